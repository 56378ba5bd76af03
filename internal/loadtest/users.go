package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay/wxsim"
)

// apiError is an HTTP answer that is not 2xx.
type apiError struct {
	status int
	code   string // the service's error code, or the simulator's errMsg
	msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.status, e.code, clip(e.msg, 200))
}

// retryable reports whether a call that failed so may succeed later:
// transport failures, 429, 5xx, and 409 (WeChat refused to close now).
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status == http.StatusTooManyRequests || ae.status >= 500 || ae.status == http.StatusConflict
	}
	return !errors.Is(err, context.Canceled)
}

// transportError reports whether err is the connection's, not the
// server's answer: the user then tries another instance.
func transportError(err error) bool {
	var ae *apiError
	return err != nil && !errors.As(err, &ae)
}

// userIP is the loopback source address of user i: the service limits
// logins and orders per client IP, and a real shop's users come from many
// addresses. 127.0.0.0/8 is all loopback on Linux.
func userIP(i int) net.IP {
	return net.IPv4(127, byte(10+i/62500), byte(i/250%250+1), byte(i%250+1))
}

// vuser is one virtual mini-program user.
type vuser struct {
	e    *engine
	idx  int
	rng  *rand.Rand
	hc   *http.Client
	tr   *http.Transport
	inst int // the instance it talks to; it moves on when that one is down

	openID string // the WeChat user's, in the shop's app
}

func (e *engine) newUser(i int) *vuser {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: userIP(i)}, Timeout: 3 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 10 * time.Second, DisableCompression: true,
	}
	return &vuser{e: e, idx: i, rng: rand.New(rand.NewPCG(e.cfg.Seed, uint64(i))), tr: tr,
		hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}, inst: i % len(e.insts)}
}

func (u *vuser) base() string { return u.e.insts[u.inst].url }

// call makes one JSON request and decodes a 2xx answer into out. Answers
// of the service are kept for the secret check.
func (u *vuser) call(ctx context.Context, method, url, token string, hdr map[string]string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(url) < len(u.e.sim.url) || url[:len(u.e.sim.url)] != u.e.sim.url {
		u.e.texts.add(data)
	}
	if resp.StatusCode >= 300 {
		ae := &apiError{status: resp.StatusCode, msg: string(data)}
		var env struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil && len(env.Error) > 0 {
			var e struct{ Code string }
			if json.Unmarshal(env.Error, &e) == nil && e.Code != "" {
				ae.code = e.Code
			} else {
				var s string
				_ = json.Unmarshal(env.Error, &s)
				ae.code = clip(s, 40)
			}
		}
		return ae
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// retry runs fn until it succeeds, fails for good, or gives up (12
// tries, about 15 s: an instance killed under load may take seconds to
// come back). Each failure is counted under stage. A transport failure
// moves the user to the next instance, as a load balancer would.
func (u *vuser) retry(ctx context.Context, stage string, fn func() error) error {
	wait := 50 * time.Millisecond
	var err error
	for try := 0; try < 12; try++ {
		if err = fn(); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		u.e.stats.err(stage, err)
		if !retryable(err) {
			return err
		}
		if transportError(err) {
			u.inst = (u.inst + 1) % len(u.e.insts)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait + time.Duration(u.rng.Int64N(int64(wait)))):
		}
		wait = min(2*wait, 2*time.Second)
	}
	return err
}

type fate int

const (
	fatePay fate = iota
	fateRefund
	fateClose
	fateAbandon
)

func (u *vuser) fate() fate {
	c := u.e.cfg
	x := u.rng.Float64()
	switch {
	case x < c.AbandonRatio:
		return fateAbandon
	case x < c.AbandonRatio+c.CloseRatio:
		return fateClose
	case x < c.AbandonRatio+c.CloseRatio+c.RefundRatio:
		return fateRefund
	}
	return fatePay
}

type payParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

type orderAnswer struct {
	OutTradeNo string     `json:"out_trade_no"`
	TotalFee   int64      `json:"total_fee"`
	Status     string     `json:"status"`
	PayParams  *payParams `json:"pay_params"`
}

// run walks the user through the flow. It returns false when the user
// could not finish (the error is counted).
func (u *vuser) run(ctx context.Context) bool {
	e, st := u.e, u.e.stats
	defer u.tr.CloseIdleConnections()
	sim := e.sim.url
	choice := u.fate()

	// The WeChat user, and wx.login → POST /api/v1/login.
	if err := u.retry(ctx, "sim user", func() error {
		if !e.cfg.SimHTTP {
			wu, err := e.sim.sim.CreateUser(wxsim.NewUser{})
			u.openID = wu.OpenID
			return err
		}
		var wu struct {
			OpenID string `json:"openid"`
		}
		err := u.call(ctx, "POST", sim+"/sim/v1/users", "", nil, map[string]any{}, &wu)
		u.openID = wu.OpenID
		return err
	}); err != nil {
		return false
	}
	var token string
	if err := u.retry(ctx, "login", func() error {
		code, err := u.loginCode(ctx)
		if err != nil {
			return err
		}
		var login struct{ Token string }
		t0 := time.Now()
		if err := u.call(ctx, "POST", u.base()+"/api/v1/login", "", nil, map[string]string{"code": code}, &login); err != nil {
			return err
		}
		st.login.Record(time.Since(t0))
		token = login.Token
		return nil
	}); err != nil {
		return false
	}

	// POST /api/v1/orders, paced; a retry carries the same Idempotency-Key.
	if err := e.pacer.wait(ctx); err != nil {
		return false
	}
	p := catalog[u.rng.IntN(len(catalog))]
	cart := map[string]any{"items": []map[string]any{{"sku": p.SKU, "quantity": 1 + u.rng.IntN(3)}}}
	key := map[string]string{"Idempotency-Key": fmt.Sprintf("load-%s-%d", e.runID, u.idx)}
	var order orderAnswer
	created := time.Now()
	if err := u.retry(ctx, "create order", func() error {
		t0 := time.Now()
		if err := u.call(ctx, "POST", u.base()+"/api/v1/orders", token, key, cart, &order); err != nil {
			return err
		}
		st.create.Record(time.Since(t0))
		if order.PayParams == nil {
			return &apiError{status: 599, code: "NO_PAY_PARAMS", msg: "order " + order.OutTradeNo + " came without pay_params"}
		}
		return nil
	}); err != nil {
		return false
	}
	st.created.Add(1)
	no := order.OutTradeNo

	switch choice {
	case fateAbandon:
		st.abandoned.Add(1)
		if u.rng.IntN(2) == 0 {
			u.pay(ctx, order, "cancel")
		}
		return true
	case fateClose:
		// WeChat refuses to close an order younger than CloseMinAge.
		select {
		case <-ctx.Done():
			return false
		case <-time.After(e.cfg.CloseMinAge + 100*time.Millisecond):
		}
		t0 := time.Now()
		var view struct{ Status string }
		if err := u.retry(ctx, "close order", func() error {
			return u.call(ctx, "POST", u.base()+"/api/v1/orders/"+no+"/close", token, nil, nil, &view)
		}); err != nil {
			return false
		}
		st.closing.Record(time.Since(t0))
		st.closed.Add(1)
		return true
	}

	// wx.requestPayment, then wait for the service to say PAID.
	if !u.pay(ctx, order, "success") {
		return false
	}
	paidAt := time.Now()
	if !u.waitPaid(ctx, token, no) {
		return false
	}
	st.paidWait.Record(time.Since(paidAt))
	st.e2e.Record(time.Since(created))
	st.paid.Add(1)
	st.addPaid(no)
	if n := e.cfg.DupNotifies - 1; n > 0 {
		e.extraNotifies(ctx, no, n)
	}

	if choice == fateRefund {
		fee := max(order.TotalFee/2, 1)
		body := map[string]any{"refund_fee": fee, "reason": "wxpay load", "out_refund_no": fmt.Sprintf("LR%s%07d", e.runID, u.idx)}
		t0 := time.Now()
		if err := u.retry(ctx, "refund", func() error {
			return u.call(ctx, "POST", u.base()+"/admin/api/v1/orders/"+no+"/refunds", e.adminToken, nil, body, nil)
		}); err != nil {
			return false
		}
		st.refund.Record(time.Since(t0))
		st.refunded.Add(1)
	}
	return true
}

// loginCode is wx.login: a code for the shop's app.
func (u *vuser) loginCode(ctx context.Context) (string, error) {
	e := u.e
	if !e.cfg.SimHTTP {
		return e.sim.sim.LoginCode(wxsim.DefaultAppID, u.openID)
	}
	var code struct{ Code string }
	err := u.call(ctx, "POST", e.sim.url+"/sim/v1/login-codes", "", nil,
		map[string]string{"appid": wxsim.DefaultAppID, "openid": u.openID}, &code)
	return code.Code, err
}

// pay is wx.requestPayment with an outcome; a notify fault of --faults
// may be armed for it first.
func (u *vuser) pay(ctx context.Context, o orderAnswer, outcome string) bool {
	e := u.e
	if outcome == "success" {
		e.chaos.beforePay(u.rng)
	}
	pp := o.PayParams
	var res wxsim.PaymentResult
	t0 := time.Now()
	err := u.retry(ctx, "pay", func() error {
		if !e.cfg.SimHTTP {
			res = e.sim.sim.RequestPayment(wxsim.PaymentRequest{OpenID: u.openID, AppID: pp.AppID, TimeStamp: pp.TimeStamp,
				NonceStr: pp.NonceStr, Package: pp.Package, SignType: pp.SignType, PaySign: pp.PaySign, Outcome: wxsim.PayOutcome(outcome)})
			return nil
		}
		return u.call(ctx, "POST", e.sim.url+"/sim/v1/request-payment", "", nil, map[string]string{
			"openid": u.openID, "appId": pp.AppID, "timeStamp": pp.TimeStamp, "nonceStr": pp.NonceStr, "package": pp.Package,
			"signType": pp.SignType, "paySign": pp.PaySign, "outcome": outcome}, &res)
	})
	if err != nil {
		return false
	}
	if outcome == "success" {
		if res.ErrMsg != "requestPayment:ok" {
			e.stats.errorf("pay", "wx.requestPayment: %s", res.ErrMsg)
			return false
		}
		e.stats.pay.Record(time.Since(t0))
	}
	return true
}

// waitPaid reads the order until the service says it is paid (a notify
// arrived, or the read asked WeChat), for at most 60 s.
func (u *vuser) waitPaid(ctx context.Context, token, no string) bool {
	deadline := time.Now().Add(60 * time.Second)
	// A mini program reads the order once wx.requestPayment says ok, and
	// again while it is not paid: after 20 ms, then twice as long each
	// time, up to 500 ms.
	wait := 20 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		var view struct{ Status string }
		err := u.retry(ctx, "read order", func() error {
			return u.call(ctx, "GET", u.base()+"/api/v1/orders/"+no, token, nil, nil, &view)
		})
		if err != nil {
			return false
		}
		if view.Status == "PAID" || view.Status == "REFUND" {
			return true
		}
		if view.Status != "NOTPAY" {
			u.e.stats.errorf("wait paid", "order %s is %s after a successful payment", no, view.Status)
			return false
		}
		if time.Now().After(deadline) {
			u.e.stats.errorf("wait paid", "order %s still NOTPAY 60 s after its payment", no)
			return false
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// pacer spaces order creations 1/Rate apart (no pacing when Rate is 0).
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}

// drive runs the users: Concurrency at a time, until all ran or the
// Duration is over.
func (e *engine) drive(ctx context.Context) {
	cfg := e.cfg
	e.pacer = newPacer(cfg.Rate)
	svc0, load0 := e.cpuNow()
	busy0 := machineBusy()
	defer func() {
		svc1, load1 := e.cpuNow()
		e.driveCPU = [3]time.Duration{svc1 - svc0, load1 - load0, machineBusy() - busy0}
	}()
	stopProfiles := e.startProfiles()
	defer stopProfiles()
	stopAt := e.driveStart.Add(cfg.Duration)
	stopStarting := time.After(time.Until(stopAt))
	// Users in flight when the Duration is over get 30 s more.
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
loop:
	for i := range cfg.Orders {
		select {
		case sem <- struct{}{}:
		case <-stopStarting:
		case <-ctx.Done():
			break loop
		}
		if !time.Now().Before(stopAt) {
			e.note(fmt.Sprintf("the --duration of %s was over after %d of %d users started", cfg.Duration, i, cfg.Orders))
			break loop
		}
		e.stats.started.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u := e.newUser(i)
			if !u.run(uctx) {
				e.stats.failed.Add(1)
			}
			e.stats.done.Add(1)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		<-done
	case <-time.After(time.Until(stopAt) + 30*time.Second):
		e.note("users still in flight 30 s after --duration were stopped")
		cancel()
		<-done
	}
	e.extraWG.Wait()
	e.driveEnd = time.Now()
	e.driveNotify = e.sim.sim.NotifyStats()
}

// extraNotifies sends n more copies of an order's pay notify (correctly
// signed, the same content) a little later, in the background.
func (e *engine) extraNotifies(ctx context.Context, no string, n int) {
	e.extraWG.Add(1)
	go func() {
		defer e.extraWG.Done()
		for range n {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(rand.IntN(50)) * time.Millisecond):
			}
			nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			a, err := e.sendPayNotify(nctx, no)
			cancel()
			e.stats.extraNotifies.Add(1)
			if err != nil {
				e.stats.err("extra notify", err)
			} else if !a.Acked {
				e.stats.errorf("extra notify", "%s: %s %s", a.Verdict, a.Error, clip(a.Reply, 80))
			}
		}
	}()
}

// notifyBurst sends NotifyBurst duplicate pay notifies of paid orders,
// Concurrency at a time, and measures how many the service acknowledges
// per second.
func (e *engine) notifyBurst(ctx context.Context) {
	e.stats.mu.Lock()
	nos := append([]string(nil), e.stats.paidNos...)
	e.stats.mu.Unlock()
	if len(nos) == 0 {
		return
	}
	n := e.cfg.NotifyBurst
	e.logf("notify burst: %d duplicate pay notifies, %d at a time", n, e.cfg.Concurrency)
	var h Histogram
	var acked, failed int64
	var mu sync.Mutex
	jobs := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for range e.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for no := range jobs {
				nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				t0 := time.Now()
				a, err := e.sendPayNotify(nctx, no)
				cancel()
				h.Record(time.Since(t0))
				mu.Lock()
				if err == nil && a.Acked {
					acked++
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.After(2 * time.Minute)
send:
	for i := range n {
		select {
		case jobs <- nos[i%len(nos)]:
		case <-deadline:
			break send
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()
	secs := since(start)
	e.res.NotifyBurst = &BurstResult{Sent: acked + failed, Acked: acked, Failed: failed, Seconds: round(secs, 3),
		PerSecond: round(float64(acked)/secs, 1), Latency: h.Summary()}
}
