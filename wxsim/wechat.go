package wxsim

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// apiSpec describes one WeChat Pay v2 endpoint.
type apiSpec struct {
	name    string // the name faults use: "unifiedorder", "refund" …
	cert    bool   // needs the merchant's client certificate (/secapi/*, downloadfundflow)
	noAppID bool   // getsignkey carries no appid
	bill    bool   // errors in downloadbill's style (return_msg "missing parameter" …)
	unsign  bool   // the answer carries no sign (report, getsignkey)
	handle  func(s *Simulator, c *call) result
}

// APIs by their production path.
var apis = map[string]*apiSpec{
	"/pay/unifiedorder":       {name: "unifiedorder", handle: (*Simulator).unifiedOrder},
	"/pay/orderquery":         {name: "orderquery", handle: (*Simulator).orderQuery},
	"/pay/closeorder":         {name: "closeorder", handle: (*Simulator).closeOrder},
	"/secapi/pay/refund":      {name: "refund", cert: true, handle: (*Simulator).refund},
	"/pay/refundquery":        {name: "refundquery", handle: (*Simulator).refundQuery},
	"/pay/downloadbill":       {name: "downloadbill", bill: true, handle: (*Simulator).downloadBill},
	"/pay/downloadfundflow":   {name: "downloadfundflow", cert: true, bill: true, handle: (*Simulator).downloadFundFlow},
	"/pay/micropay":           {name: "micropay", handle: (*Simulator).micropay},
	"/secapi/pay/reverse":     {name: "reverse", cert: true, handle: (*Simulator).reverse},
	"/tools/shorturl":         {name: "shorturl", handle: (*Simulator).shortURL},
	"/payitil/report":         {name: "report", unsign: true, handle: (*Simulator).report},
	"/tools/authcodetoopenid": {name: "authcodetoopenid", handle: (*Simulator).authCodeToOpenID},
}

// getSignKey serves both sandbox key paths.
var getSignKeyAPI = &apiSpec{name: "getsignkey", noAppID: true, unsign: true, handle: (*Simulator).getSignKey}

// Which environment a path addresses.
type env int

const (
	envProd       env = iota
	envSandboxOld     // /sandboxnew/…
	envSandboxNew     // /xdc/apiv2sandbox/…
)

// lookupAPI maps a request path to its endpoint and environment.
func lookupAPI(p string) (*apiSpec, env) {
	switch p {
	case "/sandboxnew/pay/getsignkey", "/xdc/apiv2getsignkey/sign/getsignkey":
		return getSignKeyAPI, envSandboxOld
	}
	e := envProd
	switch {
	case strings.HasPrefix(p, "/sandboxnew/"):
		p, e = p[len("/sandboxnew"):], envSandboxOld
	case strings.HasPrefix(p, "/xdc/apiv2sandbox/"):
		p, e = p[len("/xdc/apiv2sandbox"):], envSandboxNew
	}
	if e != envProd {
		// The sandbox serves refund and reverse without "secapi".
		switch p {
		case "/pay/refund":
			p = "/secapi/pay/refund"
		case "/pay/reverse":
			p = "/secapi/pay/reverse"
		}
	}
	return apis[p], e
}

// call is one WeChat Pay request being served.
type call struct {
	api      *apiSpec
	r        *http.Request
	env      env
	now      time.Time
	in       message
	m        *merchant
	b        *book
	appID    string
	signType wxpay.SignType
	key      string // the key that signs: the API key, or the sandbox key
	negative string // the Wechatpay-Negative-Test header
	signHint string // why the signature did not verify
}

func (c *call) get(name string) string { return c.in.get(name) }

// result is what an endpoint answers.
type result struct {
	protoCode string // return_code=FAIL: the protocol error code (not on the wire)
	protoMsg  string // return_code=FAIL: return_msg
	errCode   string // result_code=FAIL: err_code
	errDes    string // result_code=FAIL: err_code_des
	fields    []wxcrypto.Field

	raw         []byte // a bill: sent as is
	contentType string
	errorCode   string // downloadbill failures: <error_code>
	httpStatus  int    // an nginx-style refusal (client certificate)
}

func protoErr(code, msg string) result { return result{protoCode: code, protoMsg: msg} }

func bizErr(code, des string, fields ...wxcrypto.Field) result {
	return result{errCode: code, errDes: des, fields: fields}
}

func ok(fields ...wxcrypto.Field) result { return result{fields: fields} }

func field(name, value string) wxcrypto.Field { return wxcrypto.Field{Name: name, Value: value} }

// Protocol (return_code=FAIL) messages.
var protoMsgs = map[string]string{
	"REQUIRE_POST_METHOD":   "请使用post方法",
	"POST_DATA_EMPTY":       "post数据为空",
	"XML_FORMAT_ERROR":      "XML格式错误",
	"NOT_UTF8":              "编码格式错误",
	"LACK_PARAMS":           "缺少参数",
	"MCHID_NOT_EXIST":       "商户号mch_id不存在",
	"APPID_NOT_EXIST":       "appid不存在",
	"APPID_MCHID_NOT_MATCH": "appid和mch_id不匹配",
	"SIGNERROR":             "签名错误",
	"CERT_MISMATCH":         "证书与商户号不匹配",
}

// Bill endpoints word their failures differently (protocol.md §5.6).
var billMsgs = map[string]string{
	"LACK_PARAMS": "missing parameter",
	"SIGNERROR":   "SIGN ERROR",
}

func (s *Simulator) proto(c *call, code, detail string) result {
	msg := protoMsgs[code]
	if c.api.bill {
		if m, ok := billMsgs[code]; ok {
			return protoErr(code, m)
		}
	}
	if detail != "" {
		msg += " " + detail
	}
	return protoErr(code, msg)
}

// serveWeChat runs one call through the pipeline: faults, transport checks,
// decoding, merchant and app, client certificate, signature, the endpoint,
// then the signed envelope.
func (s *Simulator) serveWeChat(w http.ResponseWriter, r *http.Request, spec *apiSpec, e env) {
	f := s.faults.take(spec.name)
	if f != nil {
		switch f.Kind {
		case FaultHTTP500:
			s.log.Info("wxsim: fault", "api", spec.name, "kind", f.Kind)
			http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
			return
		case FaultDropBeforeCommit:
			s.log.Info("wxsim: fault", "api", spec.name, "kind", f.Kind)
			dropConnection(w)
			return
		case FaultDelay:
			s.log.Info("wxsim: fault", "api", spec.name, "kind", f.Kind, "delay", f.Delay)
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
	}
	c := &call{api: spec, r: r, env: e, now: s.clock.Now(), negative: r.Header.Get("Wechatpay-Negative-Test")}
	res := s.process(c, f)
	if f != nil && f.Kind == FaultSystemErrorAfterCommit && res.protoCode == "" && res.httpStatus == 0 {
		res = s.systemError(c)
	}
	if f != nil && f.Kind == FaultDropAfterCommit {
		s.log.Info("wxsim: fault", "api", spec.name, "kind", f.Kind)
		dropConnection(w)
		return
	}
	s.write(w, c, res)
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

func (s *Simulator) systemError(c *call) result {
	if c.api.bill {
		return protoErr("SYSTEMERROR", "SYSTEMERROR")
	}
	if c.m == nil {
		return protoErr("SYSTEMERROR", "SYSTEMERROR")
	}
	r := bizErr("SYSTEMERROR", "系统超时，请稍后重试")
	if c.api.name == "reverse" {
		r.fields = append(r.fields, field("recall", "Y"))
	}
	return r
}

// process validates the call and runs the endpoint.
func (s *Simulator) process(c *call, f *Fault) result {
	r := c.r
	if r.Method != http.MethodPost {
		return s.proto(c, "REQUIRE_POST_METHOD", "")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return s.proto(c, "XML_FORMAT_ERROR", "(body unreadable)")
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return protoErr("XML_FORMAT_ERROR", "post数据过大")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return s.proto(c, "POST_DATA_EMPTY", "")
	}
	in, err := decodeXML(body)
	if err != nil {
		de := err.(*decodeError)
		if de.kind == errNotUTF8 {
			return s.proto(c, "NOT_UTF8", "")
		}
		return s.proto(c, "XML_FORMAT_ERROR", "("+de.reason+")")
	}
	c.in = in
	mchID := in.get("mch_id")
	if mchID == "" {
		return s.proto(c, "LACK_PARAMS", "mch_id")
	}
	// c.m stays nil (answers unsigned) until the signature is checked.
	m := s.merchant(mchID)
	if m == nil {
		return s.proto(c, "MCHID_NOT_EXIST", "")
	}
	if !c.api.noAppID {
		c.appID = in.get("appid")
		if c.appID == "" {
			return s.proto(c, "LACK_PARAMS", "appid")
		}
		if _, known := s.apps[c.appID]; !known {
			return s.proto(c, "APPID_NOT_EXIST", "")
		}
		if !m.apps[c.appID] {
			return s.proto(c, "APPID_MCHID_NOT_MATCH", "")
		}
	}
	for _, name := range []string{"nonce_str", "sign"} {
		if in.get(name) == "" {
			return s.proto(c, "LACK_PARAMS", name)
		}
	}
	switch st := wxpay.SignType(in.get("sign_type")); st {
	case "", wxpay.SignTypeMD5:
		c.signType = wxpay.SignTypeMD5
	case wxpay.SignTypeHMACSHA256:
		c.signType = st
	default:
		return protoErr("SIGNERROR", "sign_type参数错误")
	}
	c.key = m.cfg.APIKey
	if c.env != envProd && c.api.name != "getsignkey" {
		c.key = m.sandboxKey
		if c.signType != wxpay.SignTypeMD5 {
			return protoErr("SIGNERROR", "沙箱环境仅支持MD5签名")
		}
	}
	if c.api.name == "getsignkey" && c.signType != wxpay.SignTypeMD5 {
		return protoErr("SIGNERROR", "getsignkey仅支持MD5签名")
	}
	if c.api.cert && c.env == envProd && r.TLS != nil && !m.cfg.ClientCertOptional {
		if res, bad := s.checkClientCert(r); bad {
			return res
		}
		if !certIsFor(r, m.cfg.MchID) {
			return s.proto(c, "CERT_MISMATCH", "")
		}
	}
	signed := in
	if c.api.name == "shorturl" {
		// shorturl signs the raw long_url and sends it URL-encoded.
		signed = append(message(nil), in...)
		for i := range signed {
			if signed[i].Name == "long_url" {
				if v, err := url.QueryUnescape(signed[i].Value); err == nil {
					signed[i].Value = v
				}
			}
		}
		c.in = signed
	}
	if !s.verify(c, m, signed) {
		return s.proto(c, "SIGNERROR", "")
	}
	c.m = m
	if c.env == envProd {
		c.b = m.prod
	} else {
		c.b = m.sandbox
	}
	if c.env == envSandboxNew && c.api.name == "unifiedorder" {
		return protoErr("NOAUTH", "仿真测试系统不支持统一下单，仅支持付款码支付用例")
	}
	if f != nil {
		switch f.Kind {
		case FaultSystemError:
			s.log.Info("wxsim: fault", "api", c.api.name, "kind", f.Kind)
			return s.systemError(c)
		case FaultUserPaysFirst:
			s.log.Info("wxsim: fault", "api", c.api.name, "kind", f.Kind)
			s.userPaysFirst(c)
		case FaultErrCode:
			s.log.Info("wxsim: fault", "api", c.api.name, "kind", f.Kind, "err_code", f.ErrCode)
			if c.api.bill {
				return protoErr(f.ErrCode, f.ErrCode)
			}
			return bizErr(f.ErrCode, errDescription(f.ErrCode))
		}
	}
	if c.negative != "" && c.api.name != "getsignkey" {
		code := strings.ToUpper(strings.TrimSpace(c.negative))
		s.log.Info("wxsim: negative test", "api", c.api.name, "err_code", code)
		if c.api.bill {
			return protoErr(code, code)
		}
		res := bizErr(code, errDescription(code))
		if c.api.name == "reverse" {
			res.fields = append(res.fields, field("recall", "N"))
		}
		return res
	}
	res := c.api.handle(s, c)
	s.log.Debug("wxsim: call", "api", c.api.name, "mch_id", m.cfg.MchID, "out_trade_no", in.get("out_trade_no"),
		"err_code", res.errCode, "return_msg", res.protoMsg)
	return res
}

// verify checks the request's signature. A failure is logged with the
// canonical string (key redacted) and the likely mix-up, which is also put
// in the Wxsim-Sign-Hint header.
func (s *Simulator) verify(c *call, m *merchant, in message) bool {
	sorted := append([]wxcrypto.Field(nil), in...)
	wxcrypto.SortFields(sorted)
	given := in.get("sign")
	if wxcrypto.Verify(c.signType, c.key, sorted, given) {
		return true
	}
	other := map[string]string{"AppSecret": s.apps[c.appID]}
	if c.key != m.cfg.APIKey {
		other["API key (production)"] = m.cfg.APIKey
	} else {
		other["sandbox key"] = m.sandboxKey
	}
	d := wxcrypto.Diagnose(sorted, given, wxcrypto.DiagnoseOptions{Key: c.key, SignType: c.signType, OtherSecrets: other})
	hint := strings.Join(d.Hints, "; ")
	c.signHint = hint
	s.log.Info("wxsim: bad signature", "api", c.api.name, "mch_id", m.cfg.MchID, "sign_type", string(c.signType),
		"signed_string", d.Canonical, "hint", hint)
	return false
}

// write sends the result: a bill as is, a FAIL envelope unsigned, anything
// else as the signed envelope.
func (s *Simulator) write(w http.ResponseWriter, c *call, res result) {
	h := w.Header()
	if res.httpStatus != 0 {
		h.Set("Content-Type", "text/html")
		w.WriteHeader(res.httpStatus)
		_, _ = w.Write(res.raw)
		return
	}
	if res.raw != nil {
		h.Set("Content-Type", res.contentType)
		_, _ = w.Write(res.raw)
		return
	}
	h.Set("Content-Type", "text/xml; charset=utf-8")
	buf := make([]byte, 0, 1024)
	if res.protoCode != "" {
		h.Set("Wxsim-Error", res.protoCode)
		if c.signHint != "" && res.protoCode == "SIGNERROR" {
			h.Set("Wxsim-Sign-Hint", sanitizeHeader(c.signHint))
		}
		fields := []wxcrypto.Field{field("return_code", wxpay.Fail), field("return_msg", res.protoMsg)}
		if res.errorCode != "" {
			fields = append(fields, field("error_code", res.errorCode))
		}
		buf = appendXML(buf, fields)
		_, _ = w.Write(buf)
		return
	}
	fields := s.envelope(c, res)
	buf = appendXML(buf, fields)
	_, _ = w.Write(buf)
}

// envelope builds the signed SUCCESS envelope around the result's fields.
func (s *Simulator) envelope(c *call, res result) []wxcrypto.Field {
	if c.api.unsign {
		fields := []wxcrypto.Field{field("return_code", wxpay.Success), field("return_msg", "OK")}
		if res.errCode != "" {
			fields = append(fields, field("result_code", wxpay.Fail), field("err_code", res.errCode), field("err_code_des", res.errDes))
		}
		return append(fields, res.fields...)
	}
	fields := make([]wxcrypto.Field, 0, 10+len(res.fields))
	fields = append(fields,
		field("return_code", wxpay.Success),
		field("return_msg", "OK"),
		field("appid", c.appID),
		field("mch_id", c.m.cfg.MchID),
		field("nonce_str", s.ids.NewID(IDNonce, c.now)),
		field("sign", ""),
	)
	if res.errCode != "" {
		fields = append(fields, field("result_code", wxpay.Fail), field("err_code", res.errCode), field("err_code_des", res.errDes))
	} else {
		fields = append(fields, field("result_code", wxpay.Success))
	}
	fields = append(fields, res.fields...)
	fields[5].Value = signOf(c.signType, c.key, fields)
	return fields
}

// signOf signs fields (in any order; sign and empty values are skipped).
func signOf(t wxpay.SignType, key string, fields []wxcrypto.Field) string {
	sorted := append([]wxcrypto.Field(nil), fields...)
	wxcrypto.SortFields(sorted)
	sig, _ := wxcrypto.Sign(t, key, sorted)
	return sig
}

func sanitizeHeader(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 1024 {
		b = b[:1024]
	}
	return string(b)
}

// checkClientCert refuses, as WeChat's nginx does, a /secapi/* call over
// TLS that brought no client certificate (HTTP 400 "No required SSL
// certificate was sent") or one that does not chain to Config.ClientCAs
// (HTTP 400 "The SSL certificate error"). bad reports whether the call is
// refused.
func (s *Simulator) checkClientCert(r *http.Request) (res result, bad bool) {
	st := r.TLS
	if len(st.PeerCertificates) == 0 {
		return nginx400("No required SSL certificate was sent"), true
	}
	if len(st.VerifiedChains) > 0 {
		return result{}, false
	}
	// Served with tls.RequestClientCert: the chain is checked here.
	if pool := s.cfg.ClientCAs; pool != nil {
		inter := x509.NewCertPool()
		for _, c := range st.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: time.Now()}); err == nil {
			return result{}, false
		}
	}
	return nginx400("The SSL certificate error"), true
}

func nginx400(msg string) result {
	body := "<html>\r\n<head><title>400 " + msg + "</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>" + msg + "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return result{httpStatus: http.StatusBadRequest, raw: []byte(body)}
}

// certIsFor reports whether the verified client certificate was issued to
// mchID (its common name is the mch id, as in WeChat's apiclient_cert).
func certIsFor(r *http.Request, mchID string) bool {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	return r.TLS.PeerCertificates[0].Subject.CommonName == mchID
}

// errDescription is the err_code_des the simulator gives a business error
// code when nothing more specific applies.
func errDescription(code string) string {
	if d, ok := errDescs[code]; ok {
		return d
	}
	return code
}

var errDescs = map[string]string{
	"SYSTEMERROR":           "系统超时，请稍后重试",
	"BANKERROR":             "银行系统异常",
	"USERPAYING":            "需要用户输入支付密码",
	"NOTENOUGH":             "余额不足",
	"AUTHCODEEXPIRE":        "二维码已过期，请用户在微信上刷新后再试",
	"AUTH_CODE_ERROR":       "每个二维码仅限使用一次，请刷新再试",
	"AUTH_CODE_INVALID":     "101 付款码无效，请重新扫码",
	"ORDERPAID":             "该订单已支付",
	"ORDERCLOSED":           "该订单已关闭",
	"ORDERREVERSED":         "该订单已撤销",
	"ORDERNOTEXIST":         "订单不存在",
	"REFUNDNOTEXIST":        "退款订单查询失败",
	"NOAUTH":                "商户无此接口权限",
	"FREQUENCY_LIMITED":     "频率限制",
	"BIZERR_NEED_RETRY":     "退款业务流程错误，需要商户触发重试来解决",
	"TRADE_OVERDUE":         "订单已经超过退款期限",
	"USER_ACCOUNT_ABNORMAL": "退款请求失败，用户帐号注销",
	"INVALID_REQ_TOO_MUCH":  "无效请求过多",
	"TRADE_ERROR":           "交易错误",
	"BUYER_MISMATCH":        "支付帐号错误",
	"NOTSUPORTCARD":         "不支持卡类型",
	"REVERSE_EXPIRE":        "订单无法撤销，订单有7天的撤销有效期",
	"PARAM_ERROR":           "参数错误",
	"INVALID_REQUEST":       "参数错误",
	"OUT_TRADE_NO_USED":     "商户订单号重复",
	"INVALID_TRANSACTIONID": "无效transaction_id",
	"ERROR":                 "业务错误",
}
