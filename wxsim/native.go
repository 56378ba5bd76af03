package wxsim

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// ScanRequest is a user scanning a Native pay QR code: a mode-2 code_url
// (weixin://wxpay/bizpayurl?pr=…), a mode-1 product URL
// (weixin://wxpay/bizpayurl?sign=…&appid=…&mch_id=…&product_id=…&time_stamp=…&nonce_str=…)
// or a short URL from /tools/shorturl (weixin://wxpay/s/…).
type ScanRequest struct {
	OpenID  string     `json:"openid"`
	URL     string     `json:"url"`
	Outcome PayOutcome `json:"outcome,omitempty"` // what the user then does; empty: pays
}

// ScanResult is what happened.
type ScanResult struct {
	ErrMsg        string `json:"errMsg"`         // "scan:ok" or "scan:fail …reason…"
	Mode          int    `json:"mode,omitempty"` // 1 or 2; 0 when not a pay code
	MchID         string `json:"mch_id,omitempty"`
	OutTradeNo    string `json:"out_trade_no,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
	TotalFee      int64  `json:"total_fee,omitempty"`
}

func scanFail(mode int, format string, args ...any) ScanResult {
	r := payFail(format, args...)
	return ScanResult{ErrMsg: "scan:fail " + strings.TrimPrefix(r.ErrMsg, "requestPayment:fail "), Mode: mode}
}

// Scan plays a user scanning a Native QR code. In mode 2 the order behind
// the code_url is paid. In mode 1 the simulator POSTs the scan to the
// merchant's NativeCallbackURL (signed: appid, openid, mch_id,
// is_subscribe, nonce_str, product_id), checks the merchant's signed reply
// strictly and pays the prepay_id it names. The error is for an unknown
// user; everything WeChat would show the user is in ScanResult.ErrMsg.
func (s *Simulator) Scan(ctx context.Context, req ScanRequest) (ScanResult, error) {
	if !req.Outcome.valid() {
		return ScanResult{}, errors.New("wxsim: outcome must be success, cancel, insufficient or fail")
	}
	s.mu.Lock()
	payer := s.byOpenID[req.OpenID]
	long, isShort := s.shortURLs[req.URL]
	s.mu.Unlock()
	if payer == nil {
		return ScanResult{}, ErrUnknownUser
	}
	raw := req.URL
	if strings.HasPrefix(raw, "weixin://wxpay/s/") {
		if !isShort {
			return scanFail(1, "二维码已失效 (unknown short URL)"), nil
		}
		raw = long
	}
	query, found := strings.CutPrefix(raw, "weixin://wxpay/bizpayurl?")
	if !found {
		return scanFail(0, "不是微信支付二维码 (not a weixin://wxpay/bizpayurl URL)"), nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return scanFail(0, "二维码参数错误 (%v)", err), nil
	}
	if q.Get("pr") != "" {
		return s.scanMode2(raw, payer, req.Outcome), nil
	}
	return s.scanMode1(ctx, q, payer, req.Outcome), nil
}

func (s *Simulator) scanMode2(codeURL string, payer *user, outcome PayOutcome) ScanResult {
	s.mu.Lock()
	ref, known := s.codeURLs[codeURL]
	s.mu.Unlock()
	if !known {
		return scanFail(2, "二维码已失效 (unknown code_url)")
	}
	return s.payScanned(ref, codeURL, payer, outcome, 2)
}

func (s *Simulator) payScanned(ref orderRef, codeURL string, payer *user, outcome PayOutcome, mode int) ScanResult {
	b, o := ref.b, ref.o
	now := s.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if o.tradeType != wxpay.TradeTypeNative {
		return scanFail(mode, "该订单不是扫码支付订单 (trade_type %s)", o.tradeType)
	}
	if (codeURL != "" && codeURL != o.codeURL) || now.Sub(o.prepayAt) >= s.cfg.PrepayTTL {
		return scanFail(mode, "二维码已过期 (the code_url or prepay_id expired after %s)", s.cfg.PrepayTTL)
	}
	r := s.payByUserLocked(o, payer, outcome, now, "scan")
	res := ScanResult{ErrMsg: r.ErrMsg, Mode: mode, MchID: b.m.cfg.MchID, OutTradeNo: o.outTradeNo, TotalFee: o.totalFee, TransactionID: r.TransactionID}
	return res
}

func (s *Simulator) scanMode1(ctx context.Context, q url.Values, payer *user, outcome PayOutcome) ScanResult {
	for _, k := range []string{"appid", "mch_id", "product_id", "time_stamp", "nonce_str", "sign"} {
		if q.Get(k) == "" {
			return scanFail(1, "二维码参数错误 (missing %s)", k)
		}
	}
	m := s.merchant(q.Get("mch_id"))
	if m == nil || !m.apps[q.Get("appid")] {
		return scanFail(1, "二维码参数错误 (appid and mch_id do not match a merchant)")
	}
	fields := make([]wxcrypto.Field, 0, len(q))
	for k := range q {
		fields = append(fields, wxcrypto.Field{Name: k, Value: q.Get(k)})
	}
	wxcrypto.SortFields(fields)
	st := wxpay.SignType(q.Get("sign_type"))
	if st == "" {
		st = wxpay.SignTypeMD5
	}
	if !wxcrypto.Verify(st, m.cfg.APIKey, fields, q.Get("sign")) {
		d := wxcrypto.Diagnose(fields, q.Get("sign"), wxcrypto.DiagnoseOptions{Key: m.cfg.APIKey, SignType: st})
		return scanFail(1, "二维码签名错误 (%s)", strings.Join(d.Hints, "; "))
	}
	if m.cfg.NativeCallbackURL == "" {
		return scanFail(1, "商户未设置扫码支付回调链接 (the merchant has no NativeCallbackURL)")
	}
	appID := q.Get("appid")
	now := s.clock.Now()
	s.mu.Lock()
	openID := s.openIDForLocked(payer, appID)
	s.mu.Unlock()
	cb := []wxcrypto.Field{
		field("appid", appID), field("openid", openID), field("mch_id", m.cfg.MchID), field("is_subscribe", "N"),
		field("nonce_str", s.ids.NewID(IDNonce, now)), field("product_id", q.Get("product_id")), field("sign", ""),
	}
	cb[6].Value = signOf(wxpay.SignTypeMD5, m.cfg.APIKey, cb)
	prepayID, why := s.nativeCallback(ctx, m, appID, cb)
	if prepayID == "" {
		return scanFail(1, "%s", why)
	}
	s.mu.Lock()
	ref, known := s.prepays[prepayID]
	s.mu.Unlock()
	if !known || ref.b != m.prod {
		return scanFail(1, "商户返回的prepay_id无效 (unknown prepay_id %s)", prepayID)
	}
	return s.payScanned(ref, "", payer, outcome, 1)
}

// nativeCallback POSTs the mode-1 scan to the merchant, logs the try and
// returns the prepay_id of a valid reply, or why there is none.
func (s *Simulator) nativeCallback(ctx context.Context, m *merchant, appID string, cb []wxcrypto.Field) (string, string) {
	n := &s.notifier
	n.mu.Lock()
	n.nextID++
	id := n.nextID
	n.mu.Unlock()
	a := NotifyAttempt{Delivery: id, Kind: NotifyNativeCallback, MchID: m.cfg.MchID, URL: m.cfg.NativeCallbackURL, Attempt: 1, Time: s.clock.Now()}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.NotifyTimeout)
	defer cancel()
	status, reply, err := postXML(cctx, s.cfg.HTTPClient, m.cfg.NativeCallbackURL, appendXML(nil, cb))
	a.Elapsed = float64(time.Since(start).Microseconds()) / 1000
	a.HTTPStatus, a.Reply = status, snippet(reply)
	prepayID, why := s.judgeNativeReply(m, appID, status, reply, err)
	if prepayID != "" {
		a.Verdict, a.Acked = VerdictAcknowledged, true
	} else {
		a.Verdict, a.Error = VerdictRejected, why
	}
	n.mu.Lock()
	n.stats.Tries++
	n.recordLocked(a)
	n.mu.Unlock()
	return prepayID, why
}

// judgeNativeReply checks the merchant's answer to a mode-1 callback: HTTP
// 200, a flat <xml> with return_code and result_code SUCCESS, the
// merchant's appid and mch_id, a prepay_id, and a valid sign.
func (s *Simulator) judgeNativeReply(m *merchant, appID string, status int, reply []byte, err error) (string, string) {
	if err != nil {
		return "", "商户回调失败 (the callback failed: " + err.Error() + ")"
	}
	if status != http.StatusOK {
		return "", "商户回调失败 (HTTP status " + http.StatusText(status) + ")"
	}
	msg, derr := decodeXML(reply)
	if derr != nil {
		return "", "商户回调返回格式错误 (" + derr.Error() + ")"
	}
	if msg.get("return_code") != wxpay.Success {
		return "", "商户返回失败：" + msg.get("return_msg")
	}
	if msg.get("result_code") != wxpay.Success {
		return "", "商户返回失败：" + msg.get("err_code_des")
	}
	if msg.get("appid") != appID || msg.get("mch_id") != m.cfg.MchID {
		return "", "商户返回的appid或mch_id不一致"
	}
	sorted := append([]wxcrypto.Field(nil), msg...)
	wxcrypto.SortFields(sorted)
	st := wxpay.SignType(msg.get("sign_type"))
	if st == "" {
		st = wxpay.SignTypeMD5
	}
	if !wxcrypto.Verify(st, m.cfg.APIKey, sorted, msg.get("sign")) {
		return "", "商户返回签名错误 (the reply's sign does not verify)"
	}
	if msg.get("prepay_id") == "" {
		return "", "商户返回缺少prepay_id"
	}
	return msg.get("prepay_id"), ""
}
