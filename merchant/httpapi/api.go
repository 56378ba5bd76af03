package httpapi

import (
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
)

// The mini-program API (design.md, "HTTP API").

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Code string `json:"code"` // what wx.login returned
}

// LoginResponse is the answer of POST /api/v1/login. The WeChat
// session_key never leaves the server.
type LoginResponse struct {
	Token  string `json:"token"` // send as "Authorization: Bearer <token>"
	OpenID string `json:"openid"`
}

// login trades a wx.login code for a session token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.limited(w, r, s.loginIP, s.cfg.ClientIP(r), "logins") {
		return
	}
	var req struct {
		LoginRequest
		OpenID *string `json:"openid"` // ignored: the openid comes from WeChat
	}
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, openID, err := s.svc.Login(r.Context(), req.Code)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, LoginResponse{Token: token, OpenID: openID})
}

// ProductsResponse is the answer of GET /api/v1/products.
type ProductsResponse struct {
	Products []merchant.Product `json:"products"` // sku, name, price in fen
}

// products lists the catalog.
func (s *Server) products(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ProductsResponse{Products: s.svc.Products()})
}

// CreateOrderRequest is the body of POST /api/v1/orders: products and
// quantities, never prices, and never the payer (that is the session's
// user). The Idempotency-Key header makes a double tap return the same
// order.
type CreateOrderRequest struct {
	Items     []merchant.CartLine `json:"items"`      // [{"sku","quantity"}]
	TradeType wxpay.TradeType     `json:"trade_type"` // JSAPI (default) or NATIVE
}

// PayParams are the parameters for wx.requestPayment, signed. AppID is
// not passed to wx.requestPayment but is part of the signature; it is
// sent for clients (and the simulator) that need it.
type PayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// PayableOrder is the answer of POST /api/v1/orders and of
// POST /api/v1/orders/{out_trade_no}/pay-params: the order and what the
// client needs to pay it — PayParams for JSAPI, CodeURL (to show as a QR
// code) for NATIVE — while it is NOTPAY.
type PayableOrder struct {
	OutTradeNo string          `json:"out_trade_no"`
	TotalFee   int64           `json:"total_fee"`
	Status     string          `json:"status"`
	TradeType  wxpay.TradeType `json:"trade_type"`
	PayParams  *PayParams      `json:"pay_params,omitempty"`
	CodeURL    string          `json:"code_url,omitempty"`
}

func payable(res *payments.OrderResult) PayableOrder {
	o := res.Order
	out := PayableOrder{OutTradeNo: o.OutTradeNo, TotalFee: o.TotalFee, Status: string(o.Status), TradeType: o.TradeType,
		CodeURL: res.CodeURL}
	if p := res.PayParams; p != nil {
		out.PayParams = &PayParams{AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package,
			SignType: p.SignType, PaySign: p.PaySign}
	}
	return out
}

// createOrder prices the cart on the server, stores the order and returns
// its pay parameters: 201 for a new order, 200 (and the header
// Idempotent-Replayed: true) when the Idempotency-Key returned an earlier
// one.
func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	sess := session(r.Context())
	if !s.limited(w, r, s.ordersIP, s.cfg.ClientIP(r), "orders") ||
		!s.limited(w, r, s.ordersUser, sess.OpenID, "orders") {
		return
	}
	var req struct {
		CreateOrderRequest
		OpenID *string `json:"openid"` // ignored: the payer is the session's user
	}
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.svc.CreateOrder(r.Context(), sess, payments.CreateOrderRequest{
		Items: req.Items, TradeType: req.TradeType,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), ClientIP: s.cfg.ClientIP(r),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !res.Created {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/api/v1/orders/"+res.Order.OutTradeNo)
	writeJSON(w, status, payable(res))
}

// payParams re-issues the pay parameters of an unpaid order of the user.
func (s *Server) payParams(w http.ResponseWriter, r *http.Request) {
	sess := session(r.Context())
	if !s.limited(w, r, s.ordersUser, sess.OpenID, "orders") {
		return
	}
	res, err := s.svc.PayParams(r.Context(), sess, r.PathValue("out_trade_no"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, payable(res))
}

// OrderRefund is a refund as the mini program sees it.
type OrderRefund struct {
	OutRefundNo string `json:"out_refund_no"`
	RefundFee   int64  `json:"refund_fee"`
	Status      string `json:"status"` // PROCESSING, SUCCESS, CLOSED or CHANGE
}

// OrderView is the answer of GET /api/v1/orders/{out_trade_no} and of the
// close call. Status is NOTPAY, PAID, REFUND, CLOSED or PAYERROR. Times are
// RFC 3339 in China Standard Time.
type OrderView struct {
	OutTradeNo    string          `json:"out_trade_no"`
	Status        string          `json:"status"`
	TotalFee      int64           `json:"total_fee"`
	TradeType     wxpay.TradeType `json:"trade_type"`
	Items         []merchant.Item `json:"items"`
	Refunds       []OrderRefund   `json:"refunds"`
	CreatedAt     string          `json:"created_at"`
	ExpiresAt     string          `json:"expires_at,omitempty"`
	PaidAt        string          `json:"paid_at,omitempty"`
	TransactionID string          `json:"transaction_id,omitempty"`
}

// rfc3339 formats t in China Standard Time, or "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(wxpay.China).Format(time.RFC3339)
}

func orderView(o *merchant.Order, refunds []*merchant.Refund) OrderView {
	v := OrderView{
		OutTradeNo: o.OutTradeNo, Status: string(o.Status), TotalFee: o.TotalFee, TradeType: o.TradeType,
		Items: o.Items, Refunds: make([]OrderRefund, 0, len(refunds)),
		CreatedAt: rfc3339(o.CreatedAt), PaidAt: rfc3339(o.PaidAt), TransactionID: o.TransactionID,
	}
	if v.Items == nil {
		v.Items = []merchant.Item{}
	}
	if o.Status == merchant.OrderNotPay {
		v.ExpiresAt = rfc3339(o.ExpiresAt)
	}
	for _, rf := range refunds {
		v.Refunds = append(v.Refunds, OrderRefund{OutRefundNo: rf.OutRefundNo, RefundFee: rf.RefundFee,
			Status: string(rf.Status.Public())})
	}
	return v
}

// getOrder shows an order of the user (asking WeChat first when it is
// unpaid and stale). Another user's order is not found.
func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	o, refunds, err := s.svc.GetOrder(r.Context(), session(r.Context()), r.PathValue("out_trade_no"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orderView(o, refunds))
}

// closeOrder closes an unpaid order of the user (a paid one is shown as
// it is: the payment wins).
func (s *Server) closeOrder(w http.ResponseWriter, r *http.Request) {
	o, err := s.svc.CloseOrder(r.Context(), session(r.Context()), r.PathValue("out_trade_no"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	refunds, err := s.svc.Store().Refunds(r.Context(), o.OutTradeNo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orderView(o, refunds))
}
