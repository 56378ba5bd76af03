package wxsim

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
)

// The control API (design.md): JSON under /sim/v1/, playing the WeChat
// user and steering the simulator. Errors are {"error": "…"} with a 4xx
// status.

// controlHandler routes /sim/….
func (s *Simulator) controlHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, byMethod map[string]http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			h := byMethod[r.Method]
			if h == nil && r.Method == http.MethodHead {
				h = byMethod[http.MethodGet]
			}
			if h == nil {
				allowed := sortedKeys(byMethod)
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+strings.Join(allowed, " or "))
				return
			}
			h(w, r)
		})
	}
	route("/sim", map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	}})
	route("/sim/{$}", map[string]http.HandlerFunc{"GET": s.servePage})
	route("/sim/v1/users", map[string]http.HandlerFunc{"POST": s.ctlCreateUser, "GET": s.ctlUsers})
	route("/sim/v1/users/{openid}", map[string]http.HandlerFunc{"GET": s.ctlUser})
	route("/sim/v1/users/{openid}/balance", map[string]http.HandlerFunc{"POST": s.ctlSetBalance, "PUT": s.ctlSetBalance})
	route("/sim/v1/login-codes", map[string]http.HandlerFunc{"POST": s.ctlLoginCode})
	route("/sim/v1/request-payment", map[string]http.HandlerFunc{"POST": s.ctlRequestPayment})
	route("/sim/v1/scan", map[string]http.HandlerFunc{"POST": s.ctlScan})
	route("/sim/v1/auth-codes", map[string]http.HandlerFunc{"POST": s.ctlAuthCode})
	route("/sim/v1/faults", map[string]http.HandlerFunc{"POST": s.ctlAddFault, "GET": s.ctlFaults, "DELETE": s.ctlClearFaults})
	route("/sim/v1/clock", map[string]http.HandlerFunc{"GET": s.ctlClock, "POST": s.ctlAdvance})
	route("/sim/v1/flush", map[string]http.HandlerFunc{"POST": s.ctlFlush})
	route("/sim/v1/notifications", map[string]http.HandlerFunc{"GET": s.ctlNotifications})
	route("/sim/v1/notifications/release", map[string]http.HandlerFunc{"POST": s.ctlRelease})
	route("/sim/v1/orders", map[string]http.HandlerFunc{"GET": s.ctlOrders})
	route("/sim/v1/orders/{mch_id}/{out_trade_no}", map[string]http.HandlerFunc{"GET": s.ctlOrder})
	route("/sim/v1/orders/{mch_id}/{out_trade_no}/pay", map[string]http.HandlerFunc{"POST": s.ctlPayOrder})
	route("/sim/v1/refunds", map[string]http.HandlerFunc{"GET": s.ctlRefunds})
	route("/sim/v1/refunds/{out_refund_no}/complete", map[string]http.HandlerFunc{"POST": s.ctlCompleteRefund})
	route("/sim/v1/ledger", map[string]http.HandlerFunc{"GET": s.ctlLedger})
	route("/sim/v1/merchants", map[string]http.HandlerFunc{"GET": s.ctlMerchants})
	s.v3ControlRoutes(route)
	mux.HandleFunc("/sim/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such control API path: "+r.URL.Path)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// readJSON decodes a JSON object body strictly (unknown fields refused). An
// empty body decodes as {}.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the body")
		return false
	}
	if len(body) > 1<<20 {
		writeError(w, http.StatusRequestEntityTooLarge, "body larger than 1 MiB")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad JSON: content after the object")
		return false
	}
	return true
}

// errStatus maps the Go API's errors to a status.
func errStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrUnknownOrder), errors.Is(err, ErrUnknownRefund):
		return http.StatusNotFound
	case errors.Is(err, ErrOpenIDTaken):
		return http.StatusConflict
	case errors.Is(err, ErrClockFixed):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func (s *Simulator) ctlCreateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID  string `json:"openid"`
		AppID   string `json:"appid"`
		Balance *int64 `json:"balance"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	balance := s.cfg.DefaultBalance
	if req.Balance != nil {
		if *req.Balance < 0 {
			writeError(w, http.StatusBadRequest, ErrBadBalance.Error())
			return
		}
		balance = *req.Balance
	}
	u, err := s.createUser(req.OpenID, req.AppID, balance)
	if err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (s *Simulator) ctlUsers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"users": s.Users()})
}

func (s *Simulator) ctlUser(w http.ResponseWriter, r *http.Request) {
	u, found := s.User(r.PathValue("openid"))
	if !found {
		writeError(w, http.StatusNotFound, ErrUnknownUser.Error())
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Simulator) ctlSetBalance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Balance *int64 `json:"balance"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Balance == nil {
		writeError(w, http.StatusBadRequest, "balance is required")
		return
	}
	if err := s.SetBalance(r.PathValue("openid"), *req.Balance); err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	u, _ := s.User(r.PathValue("openid"))
	writeJSON(w, http.StatusOK, u)
}

func (s *Simulator) ctlLoginCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID  string `json:"appid"`
		OpenID string `json:"openid"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.AppID == "" {
		req.AppID = s.defaultAppID()
	}
	code, err := s.LoginCode(req.AppID, req.OpenID)
	if err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"code": code, "expires_at": s.clock.Now().Add(s.cfg.LoginCodeTTL).Format(time.RFC3339)})
}

func (s *Simulator) ctlRequestPayment(w http.ResponseWriter, r *http.Request) {
	var req PaymentRequest
	if !readJSON(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, s.RequestPayment(req))
}

func (s *Simulator) ctlScan(w http.ResponseWriter, r *http.Request) {
	var req ScanRequest
	if !readJSON(w, r, &req) {
		return
	}
	res, err := s.Scan(r.Context(), req)
	if err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Simulator) ctlAuthCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID  string          `json:"openid"`
		Outcome MicropayOutcome `json:"outcome"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	code, err := s.AuthCode(req.OpenID, req.Outcome)
	if err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"auth_code": code, "outcome": req.Outcome, "expires_at": s.clock.Now().Add(s.cfg.AuthCodeTTL).Format(time.RFC3339)})
}

// faultJSON is a fault in the control API.
type faultJSON struct {
	API     string  `json:"api"`
	Kind    string  `json:"kind"`
	Count   int     `json:"count"`
	DelayMS int64   `json:"delay_ms,omitempty"`
	ErrCode string  `json:"err_code,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
}

func (s *Simulator) ctlAddFault(w http.ResponseWriter, r *http.Request) {
	var req faultJSON
	if !readJSON(w, r, &req) {
		return
	}
	api := strings.ToLower(strings.TrimSpace(req.API))
	f := Fault{API: api, Kind: parseFaultKind(api, req.Kind), Count: req.Count,
		Delay: time.Duration(req.DelayMS) * time.Millisecond, ErrCode: req.ErrCode, Rate: req.Rate}
	if err := s.InjectFault(f); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.ctlFaults(w, r)
}

func (s *Simulator) ctlFaults(w http.ResponseWriter, _ *http.Request) {
	var out []faultJSON
	for _, f := range s.Faults() {
		out = append(out, faultJSON{API: f.API, Kind: string(f.Kind), Count: f.Count, DelayMS: f.Delay.Milliseconds(), ErrCode: f.ErrCode, Rate: f.Rate})
	}
	n := &s.notifier
	n.mu.Lock()
	for _, nf := range []struct {
		kind FaultKind
		n    int
	}{{FaultNotifyDuplicate, n.dup}, {FaultNotifyDrop, n.drop}, {FaultNotifyBadSignature, n.probe}, {FaultNotifyDelay, n.delayN}} {
		if nf.n > 0 {
			fj := faultJSON{API: "notify", Kind: string(nf.kind), Count: nf.n}
			if nf.kind == FaultNotifyDelay {
				fj.DelayMS = n.delayD.Milliseconds()
			}
			out = append(out, fj)
		}
	}
	if n.reorder > 0 {
		out = append(out, faultJSON{API: "notify", Kind: string(FaultNotifyReorder), Count: n.reorder - len(n.held)})
	}
	n.mu.Unlock()
	if out == nil {
		out = []faultJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": out})
}

func (s *Simulator) ctlClearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	s.ctlFaults(w, r)
}

func (s *Simulator) clockJSON() map[string]any {
	sched, running := s.Pending()
	return map[string]any{"now": s.clock.Now().In(wxpay.China).Format(time.RFC3339), "scheduled": sched, "running": running}
}

func (s *Simulator) ctlClock(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.clockJSON())
}

func (s *Simulator) ctlAdvance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AdvanceSeconds *float64 `json:"advance_seconds"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.AdvanceSeconds == nil || *req.AdvanceSeconds < 0 || math.IsNaN(*req.AdvanceSeconds) || *req.AdvanceSeconds > 10*365*86400 {
		writeError(w, http.StatusBadRequest, "advance_seconds must be a number of seconds between 0 and 10 years")
		return
	}
	if err := s.Advance(time.Duration(*req.AdvanceSeconds * float64(time.Second))); err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.clockJSON())
}

func (s *Simulator) ctlFlush(w http.ResponseWriter, _ *http.Request) {
	s.Flush()
	writeJSON(w, http.StatusOK, s.clockJSON())
}

func (s *Simulator) ctlNotifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since int64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be a sequence number")
			return
		}
		since = n
	}
	out := []NotifyAttempt{}
	for _, a := range s.Notifications() {
		if a.Seq <= since ||
			q.Get("kind") != "" && string(a.Kind) != q.Get("kind") ||
			q.Get("mch_id") != "" && a.MchID != q.Get("mch_id") ||
			q.Get("out_trade_no") != "" && a.OutTradeNo != q.Get("out_trade_no") {
			continue
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": out, "stats": s.NotifyStats()})
}

func (s *Simulator) ctlRelease(w http.ResponseWriter, _ *http.Request) {
	s.ReleaseNotifies()
	writeJSON(w, http.StatusOK, map[string]any{"released": true})
}

func (s *Simulator) ctlOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := q.Get("mch_id"); id != "" && s.merchant(id) == nil {
		writeError(w, http.StatusNotFound, "no such merchant")
		return
	}
	out := []Order{}
	for _, o := range s.Orders(q.Get("mch_id")) {
		if st := q.Get("state"); st != "" && string(o.State) != st {
			continue
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": out})
}

func (s *Simulator) ctlOrder(w http.ResponseWriter, r *http.Request) {
	o, found := s.Order(r.PathValue("mch_id"), r.PathValue("out_trade_no"))
	if !found {
		writeError(w, http.StatusNotFound, ErrUnknownOrder.Error())
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Simulator) ctlPayOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID  string     `json:"openid"`
		Outcome PayOutcome `json:"outcome"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	res, err := s.PayOrder(r.PathValue("mch_id"), r.PathValue("out_trade_no"), req.OpenID, req.Outcome)
	if err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Simulator) ctlRefunds(w http.ResponseWriter, r *http.Request) {
	out := s.Refunds(r.URL.Query().Get("mch_id"))
	if out == nil {
		out = []Refund{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"refunds": out})
}

func (s *Simulator) ctlCompleteRefund(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status string `json:"status"`
		MchID  string `json:"mch_id"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	st := wxpay.RefundStatus(strings.ToUpper(req.Status))
	if st == "" {
		st = wxpay.RefundStatusSuccess
	}
	no := r.PathValue("out_refund_no")
	if err := s.CompleteRefund(req.MchID, no, st); err != nil {
		writeError(w, errStatus(err), err.Error())
		return
	}
	for _, rf := range s.Refunds(req.MchID) {
		if rf.OutRefundNo == no {
			writeJSON(w, http.StatusOK, rf)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"out_refund_no": no})
}

func (s *Simulator) ctlLedger(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Ledger())
}

func (s *Simulator) ctlMerchants(w http.ResponseWriter, _ *http.Request) {
	type merchantJSON struct {
		MchID             string   `json:"mch_id"`
		AppIDs            []string `json:"appids"`
		NativeCallbackURL string   `json:"native_callback_url,omitempty"`
		RefundNotifyURL   string   `json:"refund_notify_url,omitempty"`
		FeeRate           string   `json:"fee_rate"`
	}
	out := []merchantJSON{}
	for _, m := range s.cfg.Merchants {
		mj := merchantJSON{MchID: m.MchID, NativeCallbackURL: m.NativeCallbackURL, RefundNotifyURL: m.RefundNotifyURL, FeeRate: rate(m.FeeRate)}
		for _, a := range m.Apps {
			mj.AppIDs = append(mj.AppIDs, a.AppID)
		}
		out = append(out, mj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"merchants": out})
}
