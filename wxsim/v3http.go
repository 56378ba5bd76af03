package wxsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

// FaultV3Probe (v3_* apis only) signs the answer of the call with a
// WECHATPAY/SIGNTEST/… probe signature, which the merchant must refuse:
// WeChat's signature probe traffic (签名探测流量). The call is executed.
const FaultV3Probe FaultKind = "V3_PROBE"

// v3Endpoint is one APIv3 endpoint.
type v3Endpoint struct {
	name   string // the fault api name
	method string
	handle func(s *Simulator, c *v3Call) v3Result
}

// v3Call is one APIv3 request being served.
type v3Call struct {
	r         *http.Request
	ep        *v3Endpoint
	now       time.Time // simulator clock
	body      []byte
	vm        *v3Merchant // set once the Authorization names a known merchant
	mchID     string
	param     string // the path parameter (out_trade_no, transaction_id, out_refund_no, trade type)
	requestID string
	probe     bool // sign the answer with a probe signature
	hint      string
}

// v3Result is what an APIv3 endpoint answers.
type v3Result struct {
	status      int
	body        []byte // JSON, or the bill file; nil for 204
	code        string // the error code, when status is not 2xx
	unsigned    bool   // the bill file: no Wechatpay-* headers
	contentType string
}

// v3Detail is the detail object of an error answer (protocol.md §13.7).
type v3Detail struct {
	Field    string          `json:"field,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	Issue    string          `json:"issue,omitempty"`
	Location string          `json:"location,omitempty"`
	// SignInformation is what WeChat shows of a request whose signature
	// failed: the method, URL and the start of the message it verified.
	SignInformation *v3SignInfo `json:"sign_information,omitempty"`
}

type v3SignInfo struct {
	Method               string `json:"method"`
	URL                  string `json:"url"`
	SignMessageLength    int    `json:"sign_message_length"`
	TruncatedSignMessage string `json:"truncated_sign_message"`
}

// v3ErrorBody is the body of every non-2xx answer.
type v3ErrorBody struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Detail  *v3Detail `json:"detail,omitempty"`
}

// v3Status is the HTTP status WeChat gives each error code (protocol.md
// §13.7).
var v3Status = map[string]int{
	"USERPAYING":            http.StatusAccepted,
	"PARAM_ERROR":           http.StatusBadRequest,
	"INVALID_REQUEST":       http.StatusBadRequest,
	"ORDER_CLOSED":          http.StatusBadRequest,
	"ORDER_PAID":            http.StatusBadRequest,
	"APPID_MCHID_NOT_MATCH": http.StatusBadRequest,
	"MCH_NOT_EXISTS":        http.StatusBadRequest,
	"NO_STATEMENT_EXIST":    http.StatusBadRequest,
	"STATEMENT_CREATING":    http.StatusBadRequest,
	"SIGN_ERROR":            http.StatusUnauthorized,
	"NO_AUTH":               http.StatusForbidden,
	"OUT_TRADE_NO_USED":     http.StatusForbidden,
	"NOT_ENOUGH":            http.StatusForbidden,
	"TRADE_ERROR":           http.StatusForbidden,
	"RULE_LIMIT":            http.StatusForbidden,
	"ACCOUNT_ERROR":         http.StatusForbidden,
	"USER_ACCOUNT_ABNORMAL": http.StatusForbidden,
	"REQUEST_BLOCKED":       http.StatusForbidden,
	"ORDER_NOT_EXIST":       http.StatusNotFound,
	"RESOURCE_NOT_EXISTS":   http.StatusNotFound,
	"NOT_FOUND":             http.StatusNotFound,
	"FREQUENCY_LIMITED":     http.StatusTooManyRequests,
	"SYSTEM_ERROR":          http.StatusInternalServerError,
	"OPENID_MISMATCH":       http.StatusInternalServerError,
	"INVALID_TRANSACTIONID": http.StatusInternalServerError,
	"BANK_ERROR":            http.StatusInternalServerError,
}

// v3StatusOf returns the status of code in either spelling (SYSTEMERROR is
// SYSTEM_ERROR); unknown codes are 400.
func v3StatusOf(code string) int {
	if st, ok := v3Status[code]; ok {
		return st
	}
	bare := strings.ReplaceAll(code, "_", "")
	for k, st := range v3Status {
		if strings.ReplaceAll(k, "_", "") == bare {
			return st
		}
	}
	return http.StatusBadRequest
}

// v3Messages are the default messages of error codes.
var v3Messages = map[string]string{
	"SYSTEM_ERROR":      "系统错误",
	"FREQUENCY_LIMITED": "频率超限",
	"BANK_ERROR":        "银行系统异常",
	"NOT_ENOUGH":        "用户账号余额不足",
	"NO_AUTH":           "商户无权限",
	"TRADE_ERROR":       "交易错误",
	"RULE_LIMIT":        "业务规则限制",
	"ORDER_NOT_EXIST":   "订单不存在",
	"USERPAYING":        "用户支付中，需要输入密码",
	"PARAM_ERROR":       "参数错误",
	"INVALID_REQUEST":   "无效请求",
}

func v3Error(code, msg string, detail *v3Detail) v3Result {
	if msg == "" {
		msg = v3Messages[code]
		if msg == "" {
			msg = code
		}
	}
	return v3Result{status: v3StatusOf(code), code: code, body: v3JSON(v3ErrorBody{Code: code, Message: msg, Detail: detail})}
}

// v3ParamError is a 400 PARAM_ERROR about one field.
func v3ParamError(location, field, issue, msg string) v3Result {
	return v3Error("PARAM_ERROR", msg, &v3Detail{Field: field, Issue: issue, Location: location})
}

func v3OK(v any) v3Result { return v3Result{status: http.StatusOK, body: v3JSON(v)} }

// v3JSON encodes v compactly without HTML escaping: the exact bytes that
// are signed and sent.
func v3JSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// v3Routes are the fixed paths; the others are matched in v3Route.
var v3Routes = map[string]*v3Endpoint{
	"/v3/refund/domestic/refunds": {name: "v3_refund", method: http.MethodPost, handle: (*Simulator).v3Refund},
	"/v3/bill/tradebill":          {name: "v3_bill", method: http.MethodGet, handle: (*Simulator).v3TradeBill},
	"/v3/bill/fundflowbill":       {name: "v3_bill", method: http.MethodGet, handle: (*Simulator).v3FundFlowBill},
	"/v3/billdownload/file":       {name: "v3_billdownload", method: http.MethodGet, handle: (*Simulator).v3BillDownload},
	"/v3/certificates":            {name: "v3_certificates", method: http.MethodGet, handle: (*Simulator).v3Certificates},
}

var (
	v3PrepayEP       = &v3Endpoint{name: "v3_prepay", method: http.MethodPost, handle: (*Simulator).v3Prepay}
	v3QueryByIDEP    = &v3Endpoint{name: "v3_query", method: http.MethodGet, handle: (*Simulator).v3QueryByID}
	v3QueryByOutEP   = &v3Endpoint{name: "v3_query", method: http.MethodGet, handle: (*Simulator).v3QueryByOut}
	v3CloseEP        = &v3Endpoint{name: "v3_close", method: http.MethodPost, handle: (*Simulator).v3Close}
	v3RefundQueryEP  = &v3Endpoint{name: "v3_refundquery", method: http.MethodGet, handle: (*Simulator).v3RefundQuery}
	v3PrepayKinds    = map[string]bool{"jsapi": true, "native": true, "app": true, "h5": true}
	errV3NoSuchRoute = errors.New("no such route")
)

// v3Route maps a path to its endpoint and path parameter.
func v3Route(p string) (*v3Endpoint, string, error) {
	if ep := v3Routes[p]; ep != nil {
		return ep, "", nil
	}
	if rest, ok := strings.CutPrefix(p, "/v3/pay/transactions/"); ok {
		if v3PrepayKinds[rest] {
			return v3PrepayEP, rest, nil
		}
		if id, ok := strings.CutPrefix(rest, "id/"); ok && id != "" && !strings.Contains(id, "/") {
			return v3QueryByIDEP, id, nil
		}
		if no, ok := strings.CutPrefix(rest, "out-trade-no/"); ok {
			if no2, ok := strings.CutSuffix(no, "/close"); ok && no2 != "" && !strings.Contains(no2, "/") {
				return v3CloseEP, no2, nil
			}
			if no != "" && !strings.Contains(no, "/") {
				return v3QueryByOutEP, no, nil
			}
		}
	}
	if no, ok := strings.CutPrefix(p, "/v3/refund/domestic/refunds/"); ok && no != "" && !strings.Contains(no, "/") {
		return v3RefundQueryEP, no, nil
	}
	return nil, "", errV3NoSuchRoute
}

// serveV3 serves /v3/…: route, faults, authentication, the endpoint, then
// the signed answer.
func (s *Simulator) serveV3(w http.ResponseWriter, r *http.Request) {
	c := &v3Call{r: r, now: s.clock.Now(), requestID: v3RequestID()}
	ep, param, err := v3Route(r.URL.Path)
	if err != nil {
		s.v3Write(w, c, v3Error("NOT_FOUND", "请求的资源不存在："+r.URL.Path, nil))
		return
	}
	if r.Method != ep.method {
		w.Header().Set("Allow", ep.method)
		res := v3Error("INVALID_REQUEST", "请求方法错误：须为"+ep.method, nil)
		res.status = http.StatusMethodNotAllowed
		s.v3Write(w, c, res)
		return
	}
	c.ep, c.param = ep, param
	f := s.faults.take(ep.name)
	if f != nil {
		switch f.Kind {
		case FaultHTTP500:
			s.log.Info("wxsim: fault", "api", ep.name, "kind", f.Kind)
			http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
			return
		case FaultDropBeforeCommit:
			s.log.Info("wxsim: fault", "api", ep.name, "kind", f.Kind)
			dropConnection(w)
			return
		case FaultDelay:
			s.log.Info("wxsim: fault", "api", ep.name, "kind", f.Kind, "delay", f.Delay)
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		case FaultV3Probe:
			s.log.Info("wxsim: fault", "api", ep.name, "kind", f.Kind)
			c.probe = true
		}
	}
	res := s.v3Process(c, f)
	if f != nil && c.vm != nil && res.status < 300 {
		switch f.Kind {
		case FaultSystemErrorAfterCommit:
			s.log.Info("wxsim: fault", "api", ep.name, "kind", f.Kind)
			res = v3Error("SYSTEM_ERROR", "", nil)
		case FaultDropAfterCommit:
			s.log.Info("wxsim: fault", "api", ep.name, "kind", f.Kind)
			dropConnection(w)
			return
		}
	}
	s.v3Write(w, c, res)
}

// v3RequestID makes a Request-Id like WeChat's (hex, 40 or so digits).
func v3RequestID() string { return strings.ToUpper(randomString(lowerHex, 40)) }

// v3Process reads and authenticates the request and runs the endpoint.
func (s *Simulator) v3Process(c *v3Call, f *Fault) v3Result {
	body, err := io.ReadAll(io.LimitReader(c.r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return v3Error("PARAM_ERROR", "请求体读取失败", nil)
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		res := v3Error("PARAM_ERROR", "请求体过大", nil)
		res.status = http.StatusRequestEntityTooLarge
		return res
	}
	c.body = body
	if res, ok := s.v3Authenticate(c); !ok {
		s.log.Info("wxsim: v3 authentication failed", "api", c.ep.name, "mchid", c.mchID, "hint", c.hint)
		return res
	}
	if serial := c.r.Header.Get("Wechatpay-Serial"); serial != "" && !c.vm.isPlatformSerial(serial) {
		return v3Error("PARAM_ERROR", "Wechatpay-Serial 不是有效的平台证书序列号或微信支付公钥ID", &v3Detail{Field: "Wechatpay-Serial", Location: "header", Issue: "unknown serial"})
	}
	if f != nil {
		switch f.Kind {
		case FaultSystemError:
			s.log.Info("wxsim: fault", "api", c.ep.name, "kind", f.Kind)
			return v3Error("SYSTEM_ERROR", "", nil)
		case FaultErrCode:
			s.log.Info("wxsim: fault", "api", c.ep.name, "kind", f.Kind, "code", f.ErrCode)
			return v3Error(f.ErrCode, "", nil)
		case FaultUserPaysFirst:
			s.log.Info("wxsim: fault", "api", c.ep.name, "kind", f.Kind)
			s.userPaysFirstV3(c)
		}
	}
	if neg := strings.ToUpper(strings.TrimSpace(c.r.Header.Get("Wechatpay-Negative-Test"))); neg != "" {
		s.log.Info("wxsim: negative test", "api", c.ep.name, "code", neg)
		return v3Error(neg, "", nil)
	}
	res := c.ep.handle(s, c)
	s.log.Debug("wxsim: v3 call", "api", c.ep.name, "mchid", c.mchID, "param", c.param, "status", res.status, "code", res.code)
	return res
}

// v3CanonicalURL is the path and query as the client sent them.
func v3CanonicalURL(r *http.Request) string {
	u := r.RequestURI
	if u == "" || !strings.HasPrefix(u, "/") {
		if pu, err := url.Parse(u); err == nil && u != "" {
			return pu.RequestURI()
		}
		return r.URL.RequestURI()
	}
	return u
}

// v3Authenticate checks the Authorization header (protocol.md §13.1): the
// scheme and pairs, a known merchant, a registered merchant API
// certificate, a timestamp within the window of WeChat's clock, a nonce,
// and the signature over the exact method, URL and body. It answers 401
// SIGN_ERROR otherwise, with a hint in Wxsim-Sign-Hint.
func (s *Simulator) v3Authenticate(c *v3Call) (v3Result, bool) {
	r := c.r
	fail := func(msg, field, issue, hint string) (v3Result, bool) {
		c.hint = hint
		return v3Error("SIGN_ERROR", msg, &v3Detail{Field: field, Location: "authorization", Issue: issue}), false
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return fail("Http头缺少Authorization或格式错误", "authorization", "missing", "the request carries no Authorization header")
	}
	a, err := wxcrypto.ParseAuthorizationV3(h)
	if err != nil {
		return fail("Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》", "authorization", "malformed", err.Error())
	}
	c.mchID = a.MchID
	vm := s.v3Merchant(a.MchID)
	if vm == nil {
		return fail("商户号不存在", "mchid", "unknown mchid", "no merchant "+strconv.Quote(a.MchID)+" is configured")
	}
	c.vm = vm
	cert := vm.merchantCert(a.SerialNo)
	if cert == nil {
		hint := "serial_no " + a.SerialNo + " is not a merchant API certificate registered for mch " + a.MchID
		switch {
		case strings.HasPrefix(a.SerialNo, v3PubKeyPrefix) || vm.isPlatformSerial(a.SerialNo):
			hint += ": it names WeChat Pay's key (a platform certificate or PUB_KEY_ID_); sign with your own apiclient_cert serial"
		case len(vm.merchantKeys()) == 0:
			hint += ": none is registered yet; get the generated one from Simulator.V3Credentials or GET /sim/v1/v3/merchants/" + a.MchID + ", or configure Merchant.V3.CertificatePEM"
		}
		return fail("商户证书序列号有误。", "serial_no", "unknown serial_no", hint)
	}
	if a.Nonce == "" || len(a.Nonce) > 64 {
		return fail("Http头Authorization中nonce_str格式错误", "nonce_str", "empty or too long", "nonce_str must be 1 to 64 characters")
	}
	window := s.cfg.V3.TimestampWindow
	if window == 0 {
		window = 5 * time.Minute
	}
	now := s.v3.now()
	if d := now.Sub(time.Unix(a.Timestamp, 0)); d > window || d < -window {
		return fail("Http头Authorization中timestamp已过期或无效，请检查系统时间", "timestamp", "expired",
			"timestamp "+strconv.FormatInt(a.Timestamp, 10)+" is "+d.Round(time.Second).String()+" away from WeChat's clock "+strconv.FormatInt(now.Unix(), 10)+"; the window is "+window.String())
	}
	uri := v3CanonicalURL(r)
	if err := wxcrypto.VerifyV3Request(cert.pub, r.Method, uri, a.Timestamp, a.Nonce, c.body, a.Signature); err != nil {
		msg := wxcrypto.V3RequestMessage(r.Method, uri, a.Timestamp, a.Nonce, c.body)
		trunc := msg
		if len(trunc) > 60 {
			trunc = trunc[:60]
			for !utf8.ValidString(trunc) {
				trunc = trunc[:len(trunc)-1]
			}
		}
		c.hint = "the signature does not verify under the certificate " + cert.serial + " over " + strconv.Quote(trunc) +
			"…: sign METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n with the exact path+query and body bytes sent"
		return v3Error("SIGN_ERROR", "签名错误", &v3Detail{Field: "signature", Location: "authorization", Issue: "sign not match",
			SignInformation: &v3SignInfo{Method: r.Method, URL: uri, SignMessageLength: len(msg), TruncatedSignMessage: trunc}}), false
	}
	return v3Result{}, true
}

// v3Write sends the result: signed with the merchant's current key when
// the merchant is known (a probe signature when asked), the bill file as
// is.
func (s *Simulator) v3Write(w http.ResponseWriter, c *v3Call, res v3Result) {
	h := w.Header()
	h.Set("Request-Id", c.requestID)
	if res.code != "" {
		h.Set("Wxsim-Error", res.code)
		if c.hint != "" {
			h.Set("Wxsim-Sign-Hint", sanitizeHeader(c.hint))
		}
	}
	if res.unsigned {
		h.Set("Content-Type", res.contentType)
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body)
		return
	}
	if res.body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	if c.vm != nil {
		signer, err := c.vm.signer(c.ep != nil && c.ep.name == "v3_certificates")
		if err == nil {
			probe := c.probe
			if !probe {
				rate, _ := s.v3.probeRates()
				probe = s.v3.chance(rate)
			}
			sig := s.v3.sign(signer, res.body, probe)
			h.Set("Wechatpay-Nonce", sig.nonce)
			h.Set("Wechatpay-Signature", sig.signature)
			h.Set("Wechatpay-Timestamp", sig.timestamp)
			h.Set("Wechatpay-Serial", sig.serial)
			h.Set("Wechatpay-Signature-Type", wxcrypto.AuthSchemeV3)
		} else {
			s.log.Error("wxsim: no v3 signing key", "mch_id", c.mchID, "err", err)
		}
	}
	if res.status == http.StatusNoContent {
		w.WriteHeader(res.status)
		return
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// v3Decode decodes a JSON request body strictly into v: valid UTF-8, one
// object, no unknown field, the right types. A failure is a PARAM_ERROR
// naming the field.
func v3Decode(body []byte, v any) (v3Result, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		return v3ParamError("body", "", "empty body", "请求体为空"), false
	}
	if !utf8.Valid(body) {
		return v3ParamError("body", "", "not UTF-8", "请求体不是合法的UTF-8编码"), false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			return v3Error("PARAM_ERROR", "输入源“/body/"+strings.ReplaceAll(field, ".", "/")+"”映射到值字段类型错误，不能是"+te.Value,
				&v3Detail{Field: "#/properties/" + strings.ReplaceAll(field, ".", "/properties/"), Location: "body", Issue: "must be of type " + te.Type.String()}), false
		case errors.As(err, &se):
			return v3ParamError("body", "", "malformed JSON at offset "+strconv.FormatInt(se.Offset, 10), "请求体不是合法的JSON："+se.Error()), false
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			name = strings.Trim(name, `"`)
			return v3Error("PARAM_ERROR", "请求体含有未知字段："+name,
				&v3Detail{Field: "#/properties/" + name, Location: "body", Issue: "unknown field " + strconv.Quote(name)}), false
		}
		return v3ParamError("body", "", msg, "请求体不是合法的JSON："+msg), false
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return v3ParamError("body", "", "content after the object", "请求体不是合法的JSON：对象之后还有内容"), false
	}
	return v3Result{}, true
}

// v3Missing is a PARAM_ERROR for a required field that is absent.
func v3Missing(field string) v3Result {
	return v3Error("PARAM_ERROR", "输入源“/body/"+strings.ReplaceAll(field, ".", "/")+"”映射到值字段必填性规则校验失败，此字段为必填项",
		&v3Detail{Field: "#/properties/" + strings.ReplaceAll(field, ".", "/properties/"), Location: "body", Issue: "required"})
}

// v3Invalid is a PARAM_ERROR for a field whose value breaks a rule.
func v3Invalid(location, field string, value any, issue, msg string) v3Result {
	d := &v3Detail{Field: field, Location: location, Issue: issue}
	if location == "body" {
		d.Field = "#/properties/" + strings.ReplaceAll(field, ".", "/properties/")
	}
	if value != nil {
		d.Value = v3JSON(value)
	}
	return v3Error("PARAM_ERROR", msg, d)
}
