package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

func init() { extraCommands = append(extraCommands, newDemoCmd) }

func newDemoCmd(s streams) *cobra.Command {
	var quiet, v3 bool
	var verifier string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole mini-program payment flow in one process, printing every step",
		Long: `demo starts the simulator and the merchant service on loopback (SQLite in a
temporary directory) and walks the seed flow end to end, printing what crosses
the wire at each step: wx.login → login → openid; order → unifiedorder →
prepay_id; the five pay parameters and paySign (with the signed string);
wx.requestPayment; the pay notify and the SUCCESS reply; the order PAID; a
partial refund, its encrypted notify decrypted, the refund SUCCESS; the day's
bill downloaded and reconciled with 0 differences. It exits 0 only when every
step checked out.

With --v3 the merchant uses APIv3 instead: the platform certificates are
downloaded and decrypted first, requests are JSON signed with the merchant's
RSA key, every answer and notify is verified, paySign is RSA (signType RSA),
notifies carry AES-256-GCM resources and are answered 204, and the bill is a
two-step download checked against its SHA-1.`,
		Example: `  wxpay demo
  wxpay demo --v3
  wxpay demo --v3 --verifier both
  wxpay demo --quiet   # only the step lines`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if verifier != "" && !v3 {
				return usageError{errors.New("--verifier needs --v3")}
			}
			return runDemo(cmd.Context(), s.out, !quiet, v3, verifier)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the steps without the wire traffic")
	cmd.Flags().BoolVar(&v3, "v3", false, "run the flow on APIv3 (JSON, RSA, AES-GCM)")
	cmd.Flags().StringVar(&verifier, "verifier", "", "with --v3: certificates (default), public_key, or both (a merchant migrating to the WeChat Pay public key)")
	return cmd
}

// wireLog records the WeChat-side traffic (service → simulator) and the
// notifies (simulator → service) for the demo to print.
type wireLog struct {
	mu      sync.Mutex
	entries []wireEntry
}

type wireEntry struct {
	dir, path string
	req, resp []byte
}

func (w *wireLog) add(dir, path string, req, resp []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.entries = append(w.entries, wireEntry{dir, path, req, resp})
}

// take returns and forgets the entries recorded so far.
func (w *wireLog) take() []wireEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.entries
	w.entries = nil
	return e
}

// record wraps a handler, keeping each request and response body.
func (w *wireLog) record(dir string, h http.Handler, match func(path string) bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !match(r.URL.Path) {
			h.ServeHTTP(rw, r)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: rw}
		h.ServeHTTP(rec, r)
		path := r.URL.Path
		if r.URL.RawQuery != "" {
			path += "?" + r.URL.RawQuery
		}
		w.add(dir, path, body, rec.buf.Bytes())
	})
}

type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.buf.Len() < 1<<20 {
		r.buf.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// demo is one run of the flow.
type demo struct {
	out     io.Writer
	verbose bool
	base    string
	hc      *http.Client
	wire    *wireLog
	sim     *wxsim.Simulator
	clock   *wxsim.ManualClock
	admin   string
	step    int
	v3      bool
	creds   wxsim.V3Credentials // v3: the merchant's, from the simulator
}

func (d *demo) stepf(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n%2d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.out, "      %s\n", fmt.Sprintf(format, args...))
}

// showWire prints the traffic recorded since the last call.
func (d *demo) showWire() {
	for _, e := range d.wire.take() {
		if !d.verbose {
			continue
		}
		fmt.Fprintf(d.out, "      %s %s\n", e.dir, redactSecrets(e.path))
		fmt.Fprintf(d.out, "        → %s\n", clip(redactSecrets(string(e.req)), 400))
		fmt.Fprintf(d.out, "        ← %s\n", clip(string(e.resp), 400))
	}
}

// redactSecrets hides the AppSecret in a jscode2session query.
func redactSecrets(s string) string {
	return strings.ReplaceAll(s, wxsim.DefaultAppSecret, "REDACTED")
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n-- // never cut a character in two
		}
		return s[:n] + "…"
	}
	return s
}

// call makes a JSON request to the service and decodes the answer.
func (d *demo) call(ctx context.Context, method, path, token string, body, out any) error {
	return jsonCall(ctx, d.hc, d.base, method, path, token, body, out)
}

// jsonCall sends a JSON request (body may be nil) with an optional Bearer
// token and decodes a 2xx answer into out; anything else is an error that
// quotes the start of the answer.
func jsonCall(ctx context.Context, hc *http.Client, base, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, clip(string(data), 300))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func runDemo(ctx context.Context, out io.Writer, verbose, v3 bool, verifier string) error {
	switch verifier {
	case "", config.VerifierCertificates, config.VerifierPublicKey, config.VerifierBoth:
	default:
		return usageError{fmt.Errorf("--verifier %q: use %s, %s or %s", verifier, config.VerifierCertificates, config.VerifierPublicKey, config.VerifierBoth)}
	}
	dir, err := os.MkdirTemp("", "wxpay-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	wire := &wireLog{}
	clock := wxsim.NewManualClock(time.Now())
	cfg := config.Default()
	cfg.DB = "sqlite:" + filepath.Join(dir, "demo.db")
	cfg.AdminToken = wxpay.Secret(randomHex(16))
	if v3 {
		cfg.WeChat.APIVersion = "v3"
		cfg.WeChat.Verifier = verifier
	}
	a, err := newApp(ctx, appOptions{
		cfg: cfg, listener: ln, sim: true, noJobs: true, log: slog.New(slog.DiscardHandler), now: clock.Now,
		simConfig: func(c *wxsim.Config) {
			c.Clock = clock
			c.CloseMinAge = -1
			c.RefundDelay = time.Minute
		},
		wrapSim: func(h http.Handler) http.Handler {
			return wire.record("service → WeChat", h, func(p string) bool { return !strings.HasPrefix(p, "/sim/") })
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	handler := wire.record("WeChat → service", a.handler, func(p string) bool { return strings.HasPrefix(p, "/wxpay/") })
	srv := httpapi.NewHTTPServer("", handler)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	d := &demo{out: out, verbose: verbose, base: a.baseURL, hc: &http.Client{Timeout: 10 * time.Second}, wire: wire, sim: a.sim, clock: clock,
		admin: cfg.AdminToken.Reveal(), v3: v3}
	api := "APIv2 (XML, MD5)"
	if v3 {
		api = "APIv3 (JSON, RSA-SHA256, AES-256-GCM)"
		if d.creds, err = a.sim.V3Credentials(wxsim.DefaultMchID); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "wxpay demo: service on %s, simulator on %s, SQLite in %s\n", a.baseURL, a.simURL, dir)
	fmt.Fprintf(out, "merchant %s, mini program %s (the seed article's sample account), %s\n", wxsim.DefaultMchID, wxsim.DefaultAppID, api)
	if v3 {
		var keys []string
		if a.v3.manager != nil {
			keys = append(keys, "platform certificates "+strings.Join(a.v3.manager.Serials(), ", ")+" (GET /v3/certificates, decrypted with the APIv3 key)")
		}
		if cfg.WeChat.PublicKeyID != "" && verifier != config.VerifierCertificates && verifier != "" {
			keys = append(keys, "the WeChat Pay public key "+cfg.WeChat.PublicKeyID)
		}
		d.stepf("at startup: the merchant signs requests with its API key (certificate serial %s); WeChat's answers and notifies are verified with %s",
			d.creds.CertSerial, strings.Join(keys, " and "))
		d.showWire()
	}
	if err := d.run(ctx); err != nil {
		fmt.Fprintf(out, "\nFAILED at step %d: %v\n", d.step, err)
		return &exitError{code: 1}
	}
	fmt.Fprintf(out, "\nAll %d steps checked out.\n", d.step)
	return nil
}

func (d *demo) run(ctx context.Context) error {
	// 1. wx.login
	user, err := d.sim.CreateUser(wxsim.NewUser{AppID: wxsim.DefaultAppID, Balance: 100_000})
	if err != nil {
		return err
	}
	code, err := d.sim.LoginCode(wxsim.DefaultAppID, user.OpenID)
	if err != nil {
		return err
	}
	d.stepf("wx.login() in the mini program → code %s (single use, 5 minutes)", code)

	// 2. login: code → openid
	var login struct{ Token, OpenID string }
	if err := d.call(ctx, "POST", "/api/v1/login", "", map[string]string{"code": code}, &login); err != nil {
		return err
	}
	d.stepf("POST /api/v1/login {code} → the server calls jscode2session → openid %s", login.OpenID)
	d.showWire()
	d.detail("the mini program gets an opaque session token; session_key stays with WeChat (never stored, never sent)")
	if login.OpenID != user.OpenID {
		return fmt.Errorf("openid %q, want %q", login.OpenID, user.OpenID)
	}

	// 3. create the order → unifiedorder → prepay_id
	var order struct {
		OutTradeNo string          `json:"out_trade_no"`
		TotalFee   int64           `json:"total_fee"`
		Status     string          `json:"status"`
		PayParams  apiv2.PayParams `json:"pay_params"`
	}
	cart := map[string]any{"items": []map[string]any{{"sku": "coffee", "quantity": 2}}, "trade_type": "JSAPI"}
	if err := d.call(ctx, "POST", "/api/v1/orders", login.Token, cart, &order); err != nil {
		return err
	}
	prepayAPI := "unifiedorder"
	if d.v3 {
		prepayAPI = "POST /v3/pay/transactions/jsapi"
	}
	d.stepf("POST /api/v1/orders {2 × coffee} → order %s, %s yuan (priced on the server) → %s → %s",
		order.OutTradeNo, apiv2.FormatYuan(order.TotalFee), prepayAPI, order.PayParams.Package)
	d.showWire()

	// 4. pay params
	p := order.PayParams
	d.stepf("the five pay parameters, signed into paySign:")
	d.detail("appId=%s timeStamp=%s nonceStr=%s package=%s signType=%s", p.AppID, p.TimeStamp, p.NonceStr, p.Package, p.SignType)
	if d.v3 {
		p3 := &apiv3.PayParams{AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr,
			Package: p.Package, SignType: p.SignType, PaySign: p.PaySign}
		d.detail("signed string (RSA-SHA256 with the merchant key): %q", p3.SignedString())
		d.detail("paySign: %s", clip(p.PaySign, 60))
		cert, err := wxcrypto.ParseCertificate([]byte(d.creds.CertPEM))
		if err != nil {
			return err
		}
		pub, _ := cert.PublicKey.(*rsa.PublicKey)
		if err := apiv3.VerifyPayParams(p3, pub); err != nil {
			return fmt.Errorf("paySign does not verify: %w", err)
		}
	} else {
		d.detail("signed string: %s", p.CanonicalString())
		d.detail("paySign: %s", p.PaySign)
		if ok, diag := apiv2.VerifyPayParams(&p, wxsim.DefaultAPIKey); !ok {
			return fmt.Errorf("paySign does not verify:\n%s", diag)
		}
	}

	// 5. wx.requestPayment
	var pay struct {
		ErrMsg string `json:"errMsg"`
	}
	req := map[string]string{"openid": user.OpenID, "appId": p.AppID, "timeStamp": p.TimeStamp, "nonceStr": p.NonceStr,
		"package": p.Package, "signType": p.SignType, "paySign": p.PaySign}
	if err := d.call(ctx, "POST", "/sim/v1/request-payment", "", req, &pay); err != nil {
		return err
	}
	d.stepf("wx.requestPayment(…) → the WeChat client checks paySign, the user pays → %q", pay.ErrMsg)
	if pay.ErrMsg != "requestPayment:ok" {
		return errors.New("payment refused: " + pay.ErrMsg)
	}

	// 6. the notify
	d.sim.Flush()
	if err := d.sim.Quiesce(ctx); err != nil {
		return err
	}
	if d.v3 {
		d.stepf("WeChat POSTs the pay notify to /wxpay/notify/pay; the service verifies Wechatpay-Signature over the raw body, decrypts the AES-256-GCM resource, checks the amount, commits, then answers 204")
	} else {
		d.stepf("WeChat POSTs the signed pay notify to /wxpay/notify/pay; the service verifies it, checks the amount, commits, then answers SUCCESS")
	}
	d.showWire()
	var view struct {
		Status        string `json:"status"`
		TransactionID string `json:"transaction_id"`
		Refunds       []struct {
			OutRefundNo string `json:"out_refund_no"`
			RefundFee   int64  `json:"refund_fee"`
			Status      string `json:"status"`
		} `json:"refunds"`
	}
	if err := d.call(ctx, "GET", "/api/v1/orders/"+order.OutTradeNo, login.Token, nil, &view); err != nil {
		return err
	}

	// 7. PAID
	d.stepf("GET /api/v1/orders/%s → %s (transaction %s)", order.OutTradeNo, view.Status, view.TransactionID)
	if view.Status != "PAID" {
		return fmt.Errorf("order is %s, want PAID", view.Status)
	}

	// 8. partial refund
	admin := d.admin
	var refund struct {
		OutRefundNo string `json:"out_refund_no"`
		Status      string `json:"status"`
	}
	refundFee := order.TotalFee / 4
	if err := d.call(ctx, "POST", "/admin/api/v1/orders/"+order.OutTradeNo+"/refunds", admin,
		map[string]any{"refund_fee": refundFee, "reason": "demo: one coffee spilled"}, &refund); err != nil {
		return err
	}
	refundAPI := "/secapi/pay/refund (client certificate)"
	if d.v3 {
		refundAPI = "POST /v3/refund/domestic/refunds"
	}
	d.stepf("admin refund of %s yuan → the amount is reserved, then %s → %s",
		apiv2.FormatYuan(refundFee), refundAPI, refund.Status)
	d.showWire()

	// 9. refund notify
	d.clock.Advance(2 * time.Minute)
	d.sim.Flush()
	if err := d.sim.Quiesce(ctx); err != nil {
		return err
	}
	if d.v3 {
		d.stepf("WeChat POSTs the refund notify, signed; its resource is AES-256-GCM encrypted with the APIv3 key:")
	} else {
		d.stepf("WeChat POSTs the refund notify; its req_info is AES-256-ECB encrypted with MD5(API key):")
	}
	for _, e := range d.wire.take() {
		if e.path == "/wxpay/notify/refund" && d.v3 {
			var n struct {
				EventType string `json:"event_type"`
				Resource  struct {
					Ciphertext     string `json:"ciphertext"`
					Nonce          string `json:"nonce"`
					AssociatedData string `json:"associated_data"`
				} `json:"resource"`
			}
			if err := json.Unmarshal(e.req, &n); err != nil {
				return fmt.Errorf("refund notify: %w", err)
			}
			plain, err := wxcrypto.DecryptAEAD(wxpay.Secret(d.creds.APIv3Key), n.Resource.Nonce, n.Resource.AssociatedData, n.Resource.Ciphertext)
			if err != nil {
				return fmt.Errorf("decrypting the resource: %w", err)
			}
			d.detail("%s, resource decrypted: %s", n.EventType, clip(string(plain), 600))
			d.detail("reply: HTTP 204")
		} else if e.path == "/wxpay/notify/refund" {
			if fields, err := apiv2.ParseMessage(e.req); err == nil {
				plain, err := wxcrypto.DecryptReqInfo(wxsim.DefaultAPIKey, lookupField(fields, "req_info"))
				if err != nil {
					return fmt.Errorf("decrypting req_info: %w", err)
				}
				d.detail("req_info decrypted: %s", clip(strings.ReplaceAll(string(plain), "\n", ""), 600))
			}
			d.detail("reply: %s", e.resp)
		} else if d.verbose {
			d.detail("%s → %s", e.path, clip(string(e.resp), 200))
		}
	}
	if err := d.call(ctx, "GET", "/api/v1/orders/"+order.OutTradeNo, login.Token, nil, &view); err != nil {
		return err
	}
	if len(view.Refunds) != 1 || view.Refunds[0].Status != "SUCCESS" {
		return fmt.Errorf("refund is not SUCCESS: %+v", view.Refunds)
	}
	queryAPI := "refundquery"
	if d.v3 {
		queryAPI = "GET /v3/refund/domestic/refunds/{out_refund_no}"
	}
	d.stepf("the service confirmed it with %s → refund %s SUCCESS, order %s", queryAPI, view.Refunds[0].OutRefundNo, view.Status)

	// 10. the bill and reconciliation
	day := d.clock.Now().In(wxpay.China)
	next := time.Date(day.Year(), day.Month(), day.Day()+1, 10, 0, 1, 0, wxpay.China) // bills are ready after 10:00
	d.clock.Advance(next.Sub(d.clock.Now()))
	var rec struct {
		Report struct {
			BillRows   int   `json:"bill_rows"`
			Matched    int   `json:"matched"`
			Exceptions int   `json:"exceptions"`
			BillTotal  int64 `json:"bill_total"`
			LocalTotal int64 `json:"local_total"`
		} `json:"report"`
		Exceptions []any `json:"exceptions"`
	}
	date := day.Format("2006-01-02")
	if err := d.call(ctx, "POST", "/admin/api/v1/reconciliations", admin, map[string]string{"date": date}, &rec); err != nil {
		return err
	}
	billAPI := "downloadbill"
	if d.v3 {
		billAPI = "GET /v3/bill/tradebill, then its download_url, SHA-1 checked,"
	}
	d.stepf("the next day: %s for %s (gzip) → %d rows, reconciled against the orders → %d differences",
		billAPI, date, rec.Report.BillRows, len(rec.Exceptions))
	for _, e := range d.wire.take() {
		if d.verbose && (strings.Contains(e.path, "downloadbill") || strings.Contains(e.path, "/v3/bill")) {
			if len(e.req) == 0 {
				d.detail("bill request: GET %s", clip(e.path, 300))
			} else {
				d.detail("bill request: %s", clip(string(e.req), 300))
			}
		}
	}
	if rec.Report.BillRows != 2 || len(rec.Exceptions) != 0 || rec.Report.BillTotal != rec.Report.LocalTotal {
		return fmt.Errorf("reconciliation: %+v, %d exceptions", rec.Report, len(rec.Exceptions))
	}
	return nil
}
