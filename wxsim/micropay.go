package wxsim

import (
	"errors"
	"strconv"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// MicropayOutcome is what happens when a payment code (付款码) is scanned
// with /pay/micropay. The code carries it from AuthCode; in the sandbox the
// amount chooses it (see README).
type MicropayOutcome string

// Micropay outcomes.
const (
	MicropaySuccess         MicropayOutcome = "success"          // paid at once
	MicropayUserPaying      MicropayOutcome = "userpaying"       // USERPAYING, paid after Config.UserPayingDelay
	MicropayUserPayingFail  MicropayOutcome = "userpaying_fail"  // USERPAYING, then PAYERROR after the delay
	MicropayUserPayingNever MicropayOutcome = "userpaying_never" // USERPAYING until reversed: the merchant must reverse
	MicropayAuthCodeExpire  MicropayOutcome = "authcodeexpire"   // AUTHCODEEXPIRE, nothing happens
	MicropayNotEnough       MicropayOutcome = "notenough"        // NOTENOUGH, nothing happens
	MicropaySystemError     MicropayOutcome = "systemerror"      // paid, but the answer is SYSTEMERROR
	MicropayBankError       MicropayOutcome = "bankerror"        // paid, but the answer is BANKERROR
)

func (o MicropayOutcome) valid() bool {
	switch o {
	case "", MicropaySuccess, MicropayUserPaying, MicropayUserPayingFail, MicropayUserPayingNever,
		MicropayAuthCodeExpire, MicropayNotEnough, MicropaySystemError, MicropayBankError:
		return true
	}
	return false
}

// sandboxOutcomes are the sandbox's magic micropay amounts, in fen.
var sandboxOutcomes = map[int64]MicropayOutcome{
	101: MicropaySuccess,
	102: MicropayUserPaying,
	103: MicropayUserPayingNever,
	104: MicropayAuthCodeExpire,
	105: MicropayNotEnough,
	106: MicropaySystemError,
	107: MicropayBankError,
	108: MicropayUserPayingFail,
}

// authCode is a payment code shown by a user's WeChat.
type authCode struct {
	user    *user
	outcome MicropayOutcome
	expires time.Time
	used    bool
}

// AuthCode returns a payment code (an 18-digit number, what the user's
// WeChat shows as a barcode) of the user with openID, valid once for
// Config.AuthCodeTTL. outcome says what micropay does with it; empty means
// success (still NOTENOUGH when the balance is short).
func (s *Simulator) AuthCode(openID string, outcome MicropayOutcome) (string, error) {
	if !outcome.valid() {
		return "", errBadOutcome
	}
	if outcome == "" {
		outcome = MicropaySuccess
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byOpenID[openID]
	if u == nil {
		return "", ErrUnknownUser
	}
	for {
		code := s.ids.NewID(IDAuthCode, now)
		if _, taken := s.authCodes[code]; taken {
			continue
		}
		s.authCodes[code] = &authCode{user: u, outcome: outcome, expires: now.Add(s.cfg.AuthCodeTTL)}
		return code, nil
	}
}

var errBadOutcome = errors.New("wxsim: unknown micropay outcome")

// sandboxUserLocked is the payer of every sandbox micropay. s.mu must be
// held.
func (s *Simulator) sandboxUserLocked() *user {
	for _, u := range s.users {
		if u.first == "sandbox" {
			return u
		}
	}
	u := &user{openIDs: map[string]string{}, first: "sandbox", balance: 1 << 50, bankType: "OTHERS"}
	s.users = append(s.users, u)
	return u
}

// resolveAuthCode checks a payment code and returns its user and outcome,
// or the error to answer.
func (s *Simulator) resolveAuthCode(c *call, code string, fee int64, consume bool) (*user, MicropayOutcome, result, bool) {
	if len(code) != 18 || !isDigits(code) {
		return nil, "", bizErr("AUTH_CODE_ERROR", "auth_code参数错误：须为18位数字"), false
	}
	if code[0] != '1' || code[1] < '0' || code[1] > '5' {
		return nil, "", bizErr("AUTH_CODE_INVALID", "101 付款码无效，请重新扫码"), false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.env != envProd {
		outcome, ok := sandboxOutcomes[fee]
		if !ok {
			outcome = MicropaySuccess
		}
		return s.sandboxUserLocked(), outcome, result{}, true
	}
	ac := s.authCodes[code]
	switch {
	case ac == nil:
		return nil, "", bizErr("AUTH_CODE_INVALID", "101 付款码无效，请重新扫码"), false
	case !c.now.Before(ac.expires):
		return nil, "", bizErr("AUTHCODEEXPIRE", errDescription("AUTHCODEEXPIRE")), false
	case ac.used && consume:
		return nil, "", bizErr("AUTH_CODE_ERROR", errDescription("AUTH_CODE_ERROR")), false
	}
	if consume {
		ac.used = true
	}
	return ac.user, ac.outcome, result{}, true
}

var micropayRules = []fieldRule{
	{"body", 128, true},
	{"out_trade_no", 32, true},
	{"total_fee", 12, true},
	{"spbill_create_ip", 64, true},
	{"auth_code", 128, true},
	{"nonce_str", 32, false},
	{"device_info", 32, false},
	{"detail", 6000, false},
	{"attach", 127, false},
	{"fee_type", 16, false},
	{"goods_tag", 32, false},
	{"limit_pay", 32, false},
	{"time_start", 14, false},
	{"time_expire", 14, false},
	{"receipt", 8, false},
	{"profit_sharing", 16, false},
	{"scene_info", 256, false},
}

var micropayParams = []string{"appid", "body", "detail", "attach", "fee_type", "total_fee", "auth_code",
	"goods_tag", "limit_pay", "time_start", "time_expire", "device_info", "scene_info"}

// micropay serves /pay/micropay (protocol.md §5.8, §10).
func (s *Simulator) micropay(c *call) result {
	if res, good := s.checkFields(c, micropayRules); !good {
		return res
	}
	minExpire := time.Minute
	if s.cfg.MinExpire < 0 {
		minExpire = -1
	}
	fee, start, expire, res, good := s.checkCommonOrderFields(c, minExpire)
	if !good {
		return res
	}
	in := c.in
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	key := paramsKey(in, micropayParams)
	if o := b.orders[in.get("out_trade_no")]; o != nil {
		if o.tradeType != wxpay.TradeTypeMicroPay || o.params != key {
			return bizErr("OUT_TRADE_NO_USED", "商户订单号重复")
		}
		switch o.state {
		case wxpay.TradeStateSuccess, wxpay.TradeStateRefund:
			return bizErr("ORDERPAID", "该订单已支付")
		case wxpay.TradeStateUserPaying:
			return bizErr("USERPAYING", errDescription("USERPAYING"))
		case wxpay.TradeStateRevoked:
			return bizErr("ORDERREVERSED", errDescription("ORDERREVERSED"))
		default:
			return bizErr("ORDERCLOSED", errDescription("ORDERCLOSED"))
		}
	}
	payer, outcome, res, good := s.resolveAuthCode(c, in.get("auth_code"), fee, true)
	if !good {
		return res
	}
	switch outcome {
	case MicropayAuthCodeExpire:
		return bizErr("AUTHCODEEXPIRE", errDescription("AUTHCODEEXPIRE"))
	case MicropayNotEnough:
		return bizErr("NOTENOUGH", errDescription("NOTENOUGH"))
	}
	s.mu.Lock()
	openID := s.openIDForLocked(payer, c.appID)
	short := payer.balance < fee
	s.mu.Unlock()
	if short && (outcome == MicropaySuccess || outcome == MicropaySystemError || outcome == MicropayBankError) {
		return bizErr("NOTENOUGH", errDescription("NOTENOUGH"))
	}
	o := &order{
		b: b, appID: c.appID, outTradeNo: in.get("out_trade_no"), tradeType: wxpay.TradeTypeMicroPay,
		state: wxpay.TradeStateNotPay, totalFee: fee, feeType: "CNY", body: in.get("body"), detail: in.get("detail"),
		attach: in.get("attach"), deviceInfo: in.get("device_info"), goodsTag: in.get("goods_tag"),
		limitPay: in.get("limit_pay"), sceneInfo: in.get("scene_info"), spbillIP: in.get("spbill_create_ip"),
		signType: c.signType, params: key, timeStart: start, timeExpire: expire, createdAt: c.now,
		authCode: in.get("auth_code"), payer: payer, payerOpenID: openID,
	}
	b.orders[o.outTradeNo] = o
	b.orderSeq = append(b.orderSeq, o)
	switch outcome {
	case MicropayUserPaying, MicropayUserPayingFail, MicropayUserPayingNever:
		o.state = wxpay.TradeStateUserPaying
		if outcome != MicropayUserPayingNever {
			success := outcome == MicropayUserPaying
			o.userPayingJob = s.sched.after(s.cfg.UserPayingDelay, func() {
				b.mu.Lock()
				defer b.mu.Unlock()
				s.finishUserPayingLocked(o, success, s.clock.Now())
			})
		}
		return bizErr("USERPAYING", errDescription("USERPAYING"))
	}
	s.payLocked(o, payer, openID, c.now)
	switch outcome {
	case MicropaySystemError:
		return bizErr("SYSTEMERROR", errDescription("SYSTEMERROR"))
	case MicropayBankError:
		return bizErr("BANKERROR", errDescription("BANKERROR"))
	}
	return ok(micropayFields(o)...)
}

// finishUserPayingLocked ends a USERPAYING micropay: paid (or PAYERROR when
// the balance is short), or PAYERROR. b.mu must be held.
func (s *Simulator) finishUserPayingLocked(o *order, success bool, now time.Time) {
	if o.state != wxpay.TradeStateUserPaying {
		return
	}
	if o.userPayingJob != nil {
		s.sched.cancelTask(o.userPayingJob)
		o.userPayingJob = nil
	}
	if success && s.payLocked(o, o.payer, o.payerOpenID, now) {
		return
	}
	o.state = wxpay.TradeStatePayError
	o.closedAt = now
}

func micropayFields(o *order) []wxcrypto.Field {
	fee := strconv.FormatInt(o.totalFee, 10)
	return []wxcrypto.Field{
		field("device_info", o.deviceInfo),
		field("openid", o.payerOpenID),
		field("is_subscribe", "N"),
		field("trade_type", string(o.tradeType)),
		field("bank_type", o.bankType),
		field("fee_type", o.feeType),
		field("total_fee", fee),
		field("cash_fee", fee),
		field("cash_fee_type", "CNY"),
		field("transaction_id", o.transactionID),
		field("out_trade_no", o.outTradeNo),
		field("attach", o.attach),
		field("time_end", cst(o.paidAt, layoutCompact)),
	}
}

// reverse serves /secapi/pay/reverse (protocol.md §5.9): a micropay is
// cancelled within 7 days; a paid one is given back to the payer. The
// answer is always recall=N except under a SYSTEMERROR fault.
func (s *Simulator) reverse(c *call) result {
	in := c.in
	recallN := field("recall", "N")
	if in.get("transaction_id") == "" && in.get("out_trade_no") == "" {
		return s.proto(c, "LACK_PARAMS", "transaction_id或out_trade_no")
	}
	if t := in.get("transaction_id"); t != "" && (!isDigits(t) || len(t) > 32) {
		return bizErr("INVALID_TRANSACTIONID", "无效transaction_id", recallN)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	o := findOrderLocked(b, in)
	if o == nil {
		return bizErr("ORDERNOTEXIST", "订单不存在", recallN)
	}
	if o.tradeType != wxpay.TradeTypeMicroPay {
		return bizErr("INVALID_REQUEST", "仅付款码支付的订单可以撤销", recallN)
	}
	if c.now.Sub(o.createdAt) > 7*24*time.Hour {
		return bizErr("REVERSE_EXPIRE", errDescription("REVERSE_EXPIRE"), recallN)
	}
	switch o.state {
	case wxpay.TradeStateRevoked:
	case wxpay.TradeStateRefund:
		return bizErr("INVALID_REQUEST", "订单已发生退款，不能撤销，请使用退款", recallN)
	case wxpay.TradeStateSuccess:
		s.mu.Lock()
		o.payer.balance += o.totalFee
		s.mu.Unlock()
		o.state = wxpay.TradeStateRevoked
		o.revokedAt = c.now
	default: // USERPAYING, PAYERROR, NOTPAY
		if o.userPayingJob != nil {
			s.sched.cancelTask(o.userPayingJob)
			o.userPayingJob = nil
		}
		o.state = wxpay.TradeStateRevoked
		o.revokedAt = c.now
	}
	return ok(recallN)
}

// authCodeToOpenID serves /tools/authcodetoopenid (protocol.md §5.12).
func (s *Simulator) authCodeToOpenID(c *call) result {
	if res, good := s.checkFields(c, []fieldRule{{"auth_code", 128, true}}); !good {
		return res
	}
	payer, _, res, good := s.resolveAuthCode(c, c.get("auth_code"), 0, false)
	if !good {
		return res
	}
	s.mu.Lock()
	openID := s.openIDForLocked(payer, c.appID)
	s.mu.Unlock()
	return ok(field("openid", openID))
}
