package wxsim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// user is a WeChat user: one person with one balance and an openid per app.
type user struct {
	openIDs  map[string]string // app id -> openid
	first    string            // the openid the user was created with
	firstApp string
	balance  int64
	bankType string
}

// User is a WeChat user as the control API shows it.
type User struct {
	OpenID  string            `json:"openid"`  // the openid the user was created with
	AppID   string            `json:"appid"`   // the app that openid belongs to
	Balance int64             `json:"balance"` // fen
	OpenIDs map[string]string `json:"openids"` // app id -> openid, for every app the user has used
}

func (u *user) snapshot() User {
	ids := make(map[string]string, len(u.openIDs))
	for k, v := range u.openIDs {
		ids[k] = v
	}
	return User{OpenID: u.first, AppID: u.firstApp, Balance: u.balance, OpenIDs: ids}
}

// Errors of the user-side Go API (and 4xx answers of the control API).
var (
	ErrUnknownUser   = errors.New("wxsim: no such user (openid)")
	ErrUnknownApp    = errors.New("wxsim: no such app id")
	ErrOpenIDTaken   = errors.New("wxsim: openid already exists")
	ErrBadOpenID     = errors.New("wxsim: openid must be 1 to 128 letters, digits, '-' or '_'")
	ErrBadBalance    = errors.New("wxsim: balance must not be negative")
	ErrUnknownOrder  = errors.New("wxsim: no such order")
	ErrUnknownRefund = errors.New("wxsim: no such refund")
)

// NewUser describes a user to create.
type NewUser struct {
	OpenID  string // empty: one is generated
	AppID   string // the app OpenID belongs to; empty: the first merchant's first app
	Balance int64  // fen; zero means Config.DefaultBalance (use SetBalance for an empty wallet)
}

// CreateUser creates a WeChat user.
func (s *Simulator) CreateUser(nu NewUser) (User, error) {
	if nu.Balance < 0 {
		return User{}, ErrBadBalance
	}
	if nu.Balance == 0 {
		nu.Balance = s.cfg.DefaultBalance
	}
	return s.createUser(nu.OpenID, nu.AppID, nu.Balance)
}

func (s *Simulator) defaultAppID() string { return s.cfg.Merchants[0].Apps[0].AppID }

func (s *Simulator) createUser(openID, appID string, balance int64) (User, error) {
	if appID == "" {
		appID = s.defaultAppID()
	}
	if _, ok := s.apps[appID]; !ok {
		return User{}, ErrUnknownApp
	}
	if openID != "" && (len(openID) > 128 || !onlyChars(openID, "-_")) {
		return User{}, ErrBadOpenID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if openID == "" {
		openID = s.newOpenIDLocked()
	} else if _, taken := s.byOpenID[openID]; taken {
		return User{}, ErrOpenIDTaken
	}
	u := &user{openIDs: map[string]string{appID: openID}, first: openID, firstApp: appID, balance: balance, bankType: "OTHERS"}
	s.users = append(s.users, u)
	s.byOpenID[openID] = u
	s.openIDApp[openID] = appID
	return u.snapshot(), nil
}

func (s *Simulator) newOpenIDLocked() string {
	for {
		id := s.ids.NewID(IDOpenID, s.clock.Now())
		if _, taken := s.byOpenID[id]; !taken {
			return id
		}
	}
}

// openIDForLocked returns u's openid in app, making one if u has never
// used the app. s.mu must be held.
func (s *Simulator) openIDForLocked(u *user, appID string) string {
	if id, ok := u.openIDs[appID]; ok {
		return id
	}
	id := s.newOpenIDLocked()
	u.openIDs[appID] = id
	s.byOpenID[id] = u
	s.openIDApp[id] = appID
	return id
}

// SetBalance sets the balance, in fen, of the user with any of its openids.
func (s *Simulator) SetBalance(openID string, balance int64) error {
	if balance < 0 {
		return ErrBadBalance
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byOpenID[openID]
	if u == nil {
		return ErrUnknownUser
	}
	u.balance = balance
	return nil
}

// Users returns every user.
func (s *Simulator) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u.snapshot())
	}
	return out
}

// User returns the user with any of its openids.
func (s *Simulator) User(openID string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byOpenID[openID]
	if u == nil {
		return User{}, false
	}
	return u.snapshot(), true
}

// PayOutcome is what the user does with a payment in wx.requestPayment,
// a scan or the cashier page.
type PayOutcome string

// Payment outcomes.
const (
	OutcomeSuccess      PayOutcome = "success"      // pays
	OutcomeCancel       PayOutcome = "cancel"       // closes the cashier: "requestPayment:fail cancel"
	OutcomeInsufficient PayOutcome = "insufficient" // the balance is short, whatever it is
	OutcomeFail         PayOutcome = "fail"         // payment fails (a bank refusal)
)

func (o PayOutcome) valid() bool {
	switch o {
	case "", OutcomeSuccess, OutcomeCancel, OutcomeInsufficient, OutcomeFail:
		return true
	}
	return false
}

// PaymentRequest is what a mini program passes to wx.requestPayment, plus
// the payer and what the payer does. The JSON names are the control API's.
type PaymentRequest struct {
	OpenID    string     `json:"openid"`    // the paying user
	AppID     string     `json:"appId"`     // the mini program; empty: the order's app
	TimeStamp string     `json:"timeStamp"` // Unix seconds as a string
	NonceStr  string     `json:"nonceStr"`
	Package   string     `json:"package"` // "prepay_id=…"
	SignType  string     `json:"signType"`
	PaySign   string     `json:"paySign"`
	Outcome   PayOutcome `json:"outcome,omitempty"` // empty: success
}

// PaymentResult is what wx.requestPayment answers.
type PaymentResult struct {
	ErrMsg        string `json:"errMsg"` // "requestPayment:ok" or "requestPayment:fail …"
	TransactionID string `json:"transaction_id,omitempty"`
}

// OK reports whether the payment was made.
func (r PaymentResult) OK() bool { return r.ErrMsg == "requestPayment:ok" }

func payFail(format string, args ...any) PaymentResult {
	return PaymentResult{ErrMsg: "requestPayment:fail " + fmt.Sprintf(format, args...)}
}

// RequestPayment does what the WeChat client does for wx.requestPayment:
// it checks the parameters and the paySign exactly as the client would
// (over appId, timeStamp, nonceStr, package and signType, with the
// merchant's API key and signType's algorithm, which must be the
// unifiedorder's sign_type), then pays or fails as req.Outcome says.
func (s *Simulator) RequestPayment(req PaymentRequest) PaymentResult {
	for _, p := range []struct{ name, v string }{
		{"timeStamp", req.TimeStamp}, {"nonceStr", req.NonceStr}, {"package", req.Package},
		{"signType", req.SignType}, {"paySign", req.PaySign},
	} {
		if p.v == "" {
			return payFail("parameter error: parameter.%s should be String instead of Undefined;", p.name)
		}
	}
	if !req.Outcome.valid() {
		return payFail("parameter error: outcome must be success, cancel, insufficient or fail")
	}
	if !isDigits(req.TimeStamp) || len(req.TimeStamp) > 10 {
		return payFail("parameter error: timeStamp must be Unix seconds (up to 10 digits)")
	}
	if len(req.NonceStr) > 32 {
		return payFail("parameter error: nonceStr is longer than 32 characters")
	}
	prepayID, found := strings.CutPrefix(req.Package, "prepay_id=")
	if !found || prepayID == "" {
		return payFail("parameter error: package must be \"prepay_id=<prepay_id>\"")
	}
	if req.SignType == v3PaySignType {
		return s.requestPaymentV3(req, prepayID)
	}
	st := wxpay.SignType(req.SignType)
	if st != wxpay.SignTypeMD5 && st != wxpay.SignTypeHMACSHA256 {
		return payFail("parameter error: signType must be MD5, HMAC-SHA256 or RSA")
	}
	s.mu.Lock()
	ref, known := s.prepays[prepayID]
	payer := s.byOpenID[req.OpenID]
	s.mu.Unlock()
	if !known {
		return payFail("prepay_id %s 不存在 (unknown prepay_id)", prepayID)
	}
	b, o := ref.b, ref.o
	now := s.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	appID := req.AppID
	if appID == "" {
		appID = o.appID
	}
	if appID != o.appID {
		return payFail("appId %s 与下单的 appid %s 不一致 (the prepay_id belongs to another app)", appID, o.appID)
	}
	if o.tradeType != wxpay.TradeTypeJSAPI {
		return payFail("trade_type %s 的订单不能用 wx.requestPayment 支付 (only JSAPI orders)", o.tradeType)
	}
	fields := []wxcrypto.Field{
		{Name: "appId", Value: appID}, {Name: "nonceStr", Value: req.NonceStr}, {Name: "package", Value: req.Package},
		{Name: "signType", Value: req.SignType}, {Name: "timeStamp", Value: req.TimeStamp},
	}
	if !wxcrypto.Verify(st, b.key(), fields, req.PaySign) {
		d := wxcrypto.Diagnose(fields, req.PaySign, wxcrypto.DiagnoseOptions{Key: b.key(), SignType: st,
			OtherSecrets: map[string]string{"AppSecret": s.apps[appID]}})
		s.log.Info("wxsim: bad paySign", "mch_id", b.m.cfg.MchID, "out_trade_no", o.outTradeNo, "signed_string", d.Canonical)
		return payFail("支付验证签名失败 (paySign does not verify: %s; signed string %s)", strings.Join(d.Hints, "; "), d.Canonical)
	}
	if st != o.signType {
		return payFail("支付验证签名失败 (signType %s differs from the unifiedorder sign_type %s)", st, o.signType)
	}
	if prepayID != o.prepayID || now.Sub(o.prepayAt) >= s.cfg.PrepayTTL {
		return payFail("prepay_id 已失效，请重新下单 (expired prepay_id)")
	}
	if payer == nil {
		return payFail("用户不存在 (unknown openid %q)", req.OpenID)
	}
	return s.payByUserLocked(o, payer, req.Outcome, now, "requestPayment")
}

// payByUserLocked pays o as the user does in the cashier: b.mu must be held.
// prefix is "requestPayment" or "scan".
func (s *Simulator) payByUserLocked(o *order, payer *user, outcome PayOutcome, now time.Time, prefix string) PaymentResult {
	fail := func(format string, args ...any) PaymentResult {
		return PaymentResult{ErrMsg: prefix + ":fail " + fmt.Sprintf(format, args...)}
	}
	o.refreshLocked(now)
	switch o.state {
	case wxpay.TradeStateSuccess, wxpay.TradeStateRefund:
		return fail("该订单已支付 (already paid)")
	case wxpay.TradeStateClosed, wxpay.TradeStateRevoked, wxpay.TradeStatePayError:
		return fail("该订单已关闭 (order closed)")
	case wxpay.TradeStateUserPaying:
		return fail("该订单正在支付中 (a micropay is waiting for the user)")
	}
	s.mu.Lock()
	openID := s.openIDForLocked(payer, o.appID)
	s.mu.Unlock()
	if o.openID != "" && o.openID != openID {
		return fail("下单账号与支付账号不一致 (the order was placed for openid %s)", o.openID)
	}
	switch outcome {
	case OutcomeCancel:
		return fail("cancel")
	case OutcomeInsufficient:
		return fail("余额不足 (insufficient balance)")
	case OutcomeFail:
		return fail("支付失败 (payment failed)")
	}
	if !s.payLocked(o, payer, openID, now) {
		return fail("余额不足 (insufficient balance)")
	}
	return PaymentResult{ErrMsg: prefix + ":ok", TransactionID: o.transactionID}
}

// PayOrder pays (or fails) an order as a user would in the cashier, without
// a paySign: what the cashier page's buttons do. For a micropay waiting in
// USERPAYING, success completes it and cancel or fail ends it in PAYERROR.
// openID may be empty for an order that names its payer (JSAPI) or a
// micropay; otherwise it picks the payer.
func (s *Simulator) PayOrder(mchID, outTradeNo, openID string, outcome PayOutcome) (PaymentResult, error) {
	if !outcome.valid() {
		return PaymentResult{}, errors.New("wxsim: outcome must be success, cancel, insufficient or fail")
	}
	ref, err := s.findOrder(mchID, outTradeNo)
	if err != nil {
		return PaymentResult{}, err
	}
	b, o := ref.b, ref.o
	now := s.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if o.state == wxpay.TradeStateUserPaying {
		s.finishUserPayingLocked(o, outcome == OutcomeSuccess || outcome == "", now)
		if o.state == wxpay.TradeStateSuccess {
			return PaymentResult{ErrMsg: "pay:ok", TransactionID: o.transactionID}, nil
		}
		return PaymentResult{ErrMsg: "pay:fail " + tradeStateDesc(o.state)}, nil
	}
	if openID == "" {
		openID = o.openID
	}
	s.mu.Lock()
	payer := s.byOpenID[openID]
	s.mu.Unlock()
	if payer == nil {
		return PaymentResult{}, ErrUnknownUser
	}
	return s.payByUserLocked(o, payer, outcome, now, "pay"), nil
}

// findOrder finds a production order by merchant and out_trade_no (or
// transaction_id).
func (s *Simulator) findOrder(mchID, outTradeNo string) (orderRef, error) {
	for _, sandbox := range []bool{false, true} {
		for _, m := range s.merchantsByID(mchID) {
			b := m.prod
			if sandbox {
				b = m.sandbox
			}
			b.mu.Lock()
			o := b.orders[outTradeNo]
			if o == nil {
				o = b.byTxn[outTradeNo]
			}
			b.mu.Unlock()
			if o != nil {
				return orderRef{b, o}, nil
			}
		}
	}
	return orderRef{}, ErrUnknownOrder
}

// merchantsByID returns the merchant with mchID, or every merchant (in
// configuration order) when mchID is empty.
func (s *Simulator) merchantsByID(mchID string) []*merchant {
	if mchID != "" {
		if m := s.merchants[mchID]; m != nil {
			return []*merchant{m}
		}
		return nil
	}
	out := make([]*merchant, 0, len(s.merchants))
	for _, mc := range s.cfg.Merchants {
		out = append(out, s.merchants[mc.MchID])
	}
	return out
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
