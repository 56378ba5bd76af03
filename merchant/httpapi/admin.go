package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
)

// The admin API: every route needs the admin token.

// AdminOrder is an order as the admin API shows it: everything but the
// idempotency key. Times are RFC 3339 in China Standard Time.
type AdminOrder struct {
	OutTradeNo      string          `json:"out_trade_no"`
	Status          string          `json:"status"`
	OpenID          string          `json:"openid"`
	AppID           string          `json:"appid"`
	MchID           string          `json:"mch_id"`
	TradeType       wxpay.TradeType `json:"trade_type"`
	Items           []merchant.Item `json:"items"`
	TotalFee        int64           `json:"total_fee"`
	RefundedFee     int64           `json:"refunded_fee"`
	RefundCount     int             `json:"refund_count"`
	Body            string          `json:"body"`
	ClientIP        string          `json:"client_ip"`
	PrepayState     string          `json:"prepay_state"`
	PrepayExpiresAt string          `json:"prepay_expires_at,omitempty"`
	TransactionID   string          `json:"transaction_id,omitempty"`
	CreatedAt       string          `json:"created_at"`
	UpdatedAt       string          `json:"updated_at,omitempty"`
	ExpiresAt       string          `json:"expires_at,omitempty"`
	PaidAt          string          `json:"paid_at,omitempty"`
	LastQueriedAt   string          `json:"last_queried_at,omitempty"`
}

func adminOrder(o *merchant.Order) AdminOrder {
	v := AdminOrder{
		OutTradeNo: o.OutTradeNo, Status: string(o.Status), OpenID: o.OpenID, AppID: o.AppID, MchID: o.MchID,
		TradeType: o.TradeType, Items: o.Items, TotalFee: o.TotalFee, RefundedFee: o.RefundedFee,
		RefundCount: o.RefundCount, Body: o.Body, ClientIP: o.ClientIP, PrepayState: string(o.PrepayState),
		PrepayExpiresAt: rfc3339(o.PrepayExpiresAt), TransactionID: o.TransactionID,
		CreatedAt: rfc3339(o.CreatedAt), UpdatedAt: rfc3339(o.UpdatedAt), ExpiresAt: rfc3339(o.ExpiresAt),
		PaidAt: rfc3339(o.PaidAt), LastQueriedAt: rfc3339(o.LastQueriedAt),
	}
	if v.Items == nil {
		v.Items = []merchant.Item{}
	}
	return v
}

// AdminRefund is a refund as the admin API shows it. Status is the stored
// one (RESERVED, PROCESSING, SUCCESS, CLOSED, CHANGE or FAILED);
// PublicStatus is what the mini program sees.
type AdminRefund struct {
	OutRefundNo  string `json:"out_refund_no"`
	OutTradeNo   string `json:"out_trade_no"`
	RefundFee    int64  `json:"refund_fee"`
	TotalFee     int64  `json:"total_fee"`
	Reason       string `json:"reason,omitempty"`
	Status       string `json:"status"`
	PublicStatus string `json:"public_status"`
	RefundID     string `json:"refund_id,omitempty"`
	Attempts     int    `json:"attempts"`
	CreatedAt    string `json:"created_at"`
	UpdatedAt    string `json:"updated_at,omitempty"`
	SuccessAt    string `json:"success_at,omitempty"`
}

func adminRefund(r *merchant.Refund) AdminRefund {
	return AdminRefund{
		OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo, RefundFee: r.RefundFee, TotalFee: r.TotalFee,
		Reason: r.Reason, Status: string(r.Status), PublicStatus: string(r.Status.Public()), RefundID: r.RefundID,
		Attempts: r.Attempts, CreatedAt: rfc3339(r.CreatedAt), UpdatedAt: rfc3339(r.UpdatedAt),
		SuccessAt: rfc3339(r.SuccessAt),
	}
}

func adminRefunds(rs []*merchant.Refund) []AdminRefund {
	out := make([]AdminRefund, 0, len(rs))
	for _, r := range rs {
		out = append(out, adminRefund(r))
	}
	return out
}

// AdminEvent is one transition of an order.
type AdminEvent struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Source string `json:"source"`
	At     string `json:"at"`
}

// AdminAnomaly is a recorded disagreement with WeChat.
type AdminAnomaly struct {
	ID         int64  `json:"id"`
	OutTradeNo string `json:"out_trade_no"`
	Kind       string `json:"kind"`
	Ref        string `json:"ref,omitempty"`
	Detail     string `json:"detail"`
	CreatedAt  string `json:"created_at"`
}

func adminAnomalies(as []*merchant.Anomaly) []AdminAnomaly {
	out := make([]AdminAnomaly, 0, len(as))
	for _, a := range as {
		out = append(out, AdminAnomaly{ID: a.ID, OutTradeNo: a.OutTradeNo, Kind: string(a.Kind), Ref: a.Ref,
			Detail: a.Detail, CreatedAt: rfc3339(a.CreatedAt)})
	}
	return out
}

// AdminOutboxEvent is a business event for the merchant's own systems.
type AdminOutboxEvent struct {
	ID          int64           `json:"id"`
	Type        string          `json:"type"`
	Ref         string          `json:"ref"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	CreatedAt   string          `json:"created_at"`
	Attempts    int             `json:"attempts"`
	NextAt      string          `json:"next_at,omitempty"`
	DeliveredAt string          `json:"delivered_at,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
}

// AdminOrderDetail is the answer of GET /admin/api/v1/orders/{out_trade_no}
// and of its sync: the order, its refunds, its timeline, its anomalies and
// its outbox events.
type AdminOrderDetail struct {
	Order     AdminOrder         `json:"order"`
	Refunds   []AdminRefund      `json:"refunds"`
	Events    []AdminEvent       `json:"events"`
	Anomalies []AdminAnomaly     `json:"anomalies"`
	Outbox    []AdminOutboxEvent `json:"outbox"`
}

// AdminOrderList is the answer of GET /admin/api/v1/orders; NextCursor is
// empty on the last page.
type AdminOrderList struct {
	Orders     []AdminOrder `json:"orders"`
	NextCursor string       `json:"next_cursor"`
}

// adminListOrders lists orders, newest first:
// ?status=&since=&until=&openid=&limit=&cursor= (times RFC 3339).
func (s *Server) adminListOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := merchant.OrderFilter{Status: merchant.OrderStatus(q.Get("status")), OpenID: q.Get("openid"), Cursor: q.Get("cursor")}
	if f.Status != "" && !f.Status.Valid() {
		s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "status must be NOTPAY, PAID, REFUND, CLOSED or PAYERROR"))
		return
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "%s must be an RFC 3339 time such as 2026-11-28T00:00:00+08:00", p.name))
				return
			}
			*p.to = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "limit must be 1 to 200"))
			return
		}
		f.Limit = n
	}
	if len(f.Cursor) > 512 {
		s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "the cursor is not one this API gave"))
		return
	}
	orders, next, err := s.svc.Store().ListOrders(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := AdminOrderList{Orders: make([]AdminOrder, 0, len(orders)), NextCursor: next}
	for _, o := range orders {
		out.Orders = append(out.Orders, adminOrder(o))
	}
	writeJSON(w, http.StatusOK, out)
}

// adminGetOrder shows an order with everything known about it.
func (s *Server) adminGetOrder(w http.ResponseWriter, r *http.Request) {
	o, refunds, err := s.svc.AdminOrder(r.Context(), r.PathValue("out_trade_no"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeDetail(w, r, o, refunds)
}

// writeDetail answers an AdminOrderDetail.
func (s *Server) writeDetail(w http.ResponseWriter, r *http.Request, o *merchant.Order, refunds []*merchant.Refund) {
	ctx := r.Context()
	st := s.svc.Store()
	events, err := st.Events(ctx, o.OutTradeNo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	anomalies, err := st.Anomalies(ctx, o.OutTradeNo, 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	outbox, err := st.OutboxFor(ctx, o.OutTradeNo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d := AdminOrderDetail{Order: adminOrder(o), Refunds: adminRefunds(refunds),
		Events: make([]AdminEvent, 0, len(events)), Anomalies: adminAnomalies(anomalies),
		Outbox: make([]AdminOutboxEvent, 0, len(outbox))}
	for _, e := range events {
		d.Events = append(d.Events, AdminEvent{From: string(e.From), To: string(e.To), Source: e.Source, At: rfc3339(e.At)})
	}
	for _, e := range outbox {
		ev := AdminOutboxEvent{ID: e.ID, Type: e.Type, Ref: e.Ref, CreatedAt: rfc3339(e.CreatedAt), Attempts: e.Attempts,
			NextAt: rfc3339(e.NextAt), DeliveredAt: rfc3339(e.DeliveredAt), LastError: e.LastError}
		if json.Valid([]byte(e.Payload)) {
			ev.Payload = json.RawMessage(e.Payload)
		}
		d.Outbox = append(d.Outbox, ev)
	}
	writeJSON(w, http.StatusOK, d)
}

// RefundRequest is the body of POST /admin/api/v1/orders/{out_trade_no}/refunds.
type RefundRequest struct {
	RefundFee   int64  `json:"refund_fee"`              // fen, > 0, never more than is left
	Reason      string `json:"reason"`                  // ≤ 80 bytes; shown to the payer
	OutRefundNo string `json:"out_refund_no,omitempty"` // optional: makes a retry idempotent
}

// adminRefund refunds part or all of a paid order. The answer is the
// refund: PROCESSING once WeChat accepted it, RESERVED when WeChat's
// answer is unknown (it is resubmitted with the same number), FAILED
// when WeChat refused it.
func (s *Server) adminRefund(w http.ResponseWriter, r *http.Request) {
	var req RefundRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	rf, err := s.svc.Refund(r.Context(), payments.RefundRequest{
		OutTradeNo: r.PathValue("out_trade_no"), RefundFee: req.RefundFee, Reason: req.Reason, OutRefundNo: req.OutRefundNo,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "admin refund",
		slog.String("request_id", requestID(r.Context())), slog.String("out_trade_no", rf.OutTradeNo),
		slog.String("out_refund_no", rf.OutRefundNo), slog.Int64("refund_fee", rf.RefundFee),
		slog.String("status", string(rf.Status)))
	writeJSON(w, http.StatusOK, adminRefund(rf))
}

// adminSync asks WeChat about an order and applies the answer, then does
// the same for each of its unfinished refunds, and shows the result. A
// refund that cannot be settled now is left for the refund job.
func (s *Server) adminSync(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	no := r.PathValue("out_trade_no")
	if _, err := s.svc.Sync(ctx, no); err != nil {
		s.writeError(w, r, err)
		return
	}
	refunds, err := s.svc.Store().Refunds(ctx, no)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, rf := range refunds {
		if rf.Status.Terminal() {
			continue
		}
		if _, err := s.svc.SyncRefund(ctx, rf.OutRefundNo); err != nil {
			s.log.WarnContext(ctx, "refund sync failed", slog.String("request_id", requestID(ctx)),
				slog.String("out_refund_no", rf.OutRefundNo), slog.String("error", err.Error()))
		}
	}
	o, err := s.svc.Store().Order(ctx, no)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if refunds, err = s.svc.Store().Refunds(ctx, no); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeDetail(w, r, o, refunds)
}

// AdminAnomalyList is the answer of GET /admin/api/v1/anomalies.
type AdminAnomalyList struct {
	Anomalies []AdminAnomaly `json:"anomalies"`
}

// adminAnomalies lists anomalies, newest first: ?out_trade_no=&limit=
// (default 100, at most 1000).
func (s *Server) adminAnomalies(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	as, err := s.svc.Store().Anomalies(r.Context(), q.Get("out_trade_no"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AdminAnomalyList{Anomalies: adminAnomalies(as)})
}

// ReconRequest is the body of POST /admin/api/v1/reconciliations.
type ReconRequest struct {
	Date string `json:"date"` // yyyy-mm-dd, China Standard Time
}

// ReconReport is a day's reconciliation summary.
type ReconReport struct {
	Date        string `json:"date"`
	BillRows    int    `json:"bill_rows"`
	Matched     int    `json:"matched"`
	Exceptions  int    `json:"exceptions"`
	Healed      int    `json:"healed"`
	BillTotal   int64  `json:"bill_total"`
	LocalTotal  int64  `json:"local_total"`
	BillRefunds int64  `json:"bill_refunds"`
	RanAt       string `json:"ran_at"`
}

// ReconException is one difference between the bill and the orders.
type ReconException struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind"`
	OutTradeNo  string `json:"out_trade_no,omitempty"`
	OutRefundNo string `json:"out_refund_no,omitempty"`
	Detail      string `json:"detail"`
	Healed      bool   `json:"healed"`
	CreatedAt   string `json:"created_at"`
}

// ReconResult is the answer of both reconciliation routes.
type ReconResult struct {
	Report     ReconReport      `json:"report"`
	Exceptions []ReconException `json:"exceptions"`
}

func reconResult(rep *merchant.ReconReport, exc []*merchant.ReconException) ReconResult {
	out := ReconResult{Exceptions: make([]ReconException, 0, len(exc))}
	if rep != nil {
		out.Report = ReconReport{Date: rep.Date, BillRows: rep.BillRows, Matched: rep.Matched, Exceptions: rep.Exceptions,
			Healed: rep.Healed, BillTotal: rep.BillTotal, LocalTotal: rep.LocalTotal, BillRefunds: rep.BillRefunds,
			RanAt: rfc3339(rep.RanAt)}
	}
	for _, e := range exc {
		out.Exceptions = append(out.Exceptions, ReconException{ID: e.ID, Kind: string(e.Kind), OutTradeNo: e.OutTradeNo,
			OutRefundNo: e.OutRefundNo, Detail: e.Detail, Healed: e.Healed, CreatedAt: rfc3339(e.CreatedAt)})
	}
	return out
}

// validDate reports whether d is a yyyy-mm-dd date.
func validDate(d string) bool {
	_, err := time.ParseInLocation(time.DateOnly, d, wxpay.China)
	return err == nil && len(d) == len(time.DateOnly)
}

// adminReconcile downloads a day's bill and compares it with the orders.
func (s *Server) adminReconcile(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Reconciler == nil {
		s.writeError(w, r, merchant.Errorf(ENOTIMPLEMENTED, "reconciliation is not configured on this server"))
		return
	}
	var req ReconRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !validDate(req.Date) {
		s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "date must be yyyy-mm-dd"))
		return
	}
	rep, exc, err := s.cfg.Reconciler.Reconcile(r.Context(), req.Date)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reconResult(rep, exc))
}

// adminRecon shows the stored reconciliation of a day.
func (s *Server) adminRecon(w http.ResponseWriter, r *http.Request) {
	date := r.PathValue("date")
	if !validDate(date) {
		s.writeError(w, r, merchant.Errorf(merchant.EINVALID, "date must be yyyy-mm-dd"))
		return
	}
	rep, err := s.svc.Store().Recon(r.Context(), date)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	exc, err := s.svc.Store().ReconExceptions(r.Context(), date)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reconResult(rep, exc))
}
