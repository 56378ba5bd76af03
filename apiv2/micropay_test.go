package apiv2

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func TestMicroPay(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/micropay", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"auth_code": "134567890123456789", "body": "门店-咖啡", "out_trade_no": "M2026112900001",
			"total_fee": "1200", "spbill_create_ip": "203.0.113.7", "device_info": "POS-7", "goods_tag": "WXG",
			"time_expire": "20261129101000", "scene_info": `{"store_info":{"id":"S1"}}`}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{
			"openid": testOpenID, "is_subscribe": "N", "trade_type": "MICROPAY", "bank_type": "CMC", "fee_type": "CNY",
			"total_fee": "1200", "settlement_total_fee": "1000", "coupon_fee": "200", "cash_fee_type": "CNY", "cash_fee": "1000",
			"transaction_id": "4200000001202611290000000001", "out_trade_no": "M2026112900001", "attach": "收银台7",
			"time_end": "20261129100501", "promotion_detail": `[{"promotion_id":"c0"}]`, "coupon_count": "3",
			"coupon_type_0": "CASH", "coupon_id_0": "c0", "coupon_fee_0": "100",
			"coupon_type_1": "NO_CASH", "coupon_id_1": "c1", "coupon_fee_1": "60",
			"coupon_type_2": "CASH", "coupon_id_2": "c2", "coupon_fee_2": "40",
			"coupon_batch_id_0": "b0", "brand_new_field": "kept", // kept in Fields only (A7)
		})
	})
	req := testMicroPay()
	req.DeviceInfo, req.GoodsTag, req.SceneInfo = "POS-7", "WXG", `{"store_info":{"id":"S1"}}`
	req.TimeExpire = time.Date(2026, 11, 29, 10, 10, 0, 0, wxpay.China)
	resp, err := c.MicroPay(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Payment
	if p.TotalFee != 1200 || p.CashFee != 1000 || p.CouponFee != 200 || p.CouponCount != 3 || p.SettlementTotalFee != 1000 ||
		p.TradeType != wxpay.TradeTypeMicroPay || p.TransactionID != "4200000001202611290000000001" || p.Attach != "收银台7" ||
		!p.TimeEnd.Equal(time.Date(2026, 11, 29, 10, 5, 1, 0, wxpay.China)) {
		t.Errorf("%+v", p)
	}
	want := []Coupon{{"CASH", "c0", 100}, {"NO_CASH", "c1", 60}, {"CASH", "c2", 40}}
	if len(p.Coupons) != len(want) {
		t.Fatalf("coupons %+v", p.Coupons)
	}
	for i := range want {
		if p.Coupons[i] != want[i] {
			t.Errorf("coupon %d: %+v, want %+v", i, p.Coupons[i], want[i])
		}
	}
	if resp.Get("brand_new_field") != "kept" || resp.Get("coupon_batch_id_0") != "b0" || resp.Get("promotion_detail") == "" {
		t.Errorf("fields %v", resp.Fields)
	}
}

func TestMicroPayInvalid(t *testing.T) {
	for name, edit := range map[string]func(*MicroPayRequest){
		"no auth code":      func(r *MicroPayRequest) { r.AuthCode = "" },
		"no body":           func(r *MicroPayRequest) { r.Body = "" },
		"zero fee":          func(r *MicroPayRequest) { r.TotalFee = 0 },
		"no IP":             func(r *MicroPayRequest) { r.SpbillCreateIP = "" },
		"bad out_trade_no":  func(r *MicroPayRequest) { r.OutTradeNo = "M1" },
		"extra duplicates":  func(r *MicroPayRequest) { r.Extra = map[string]string{"auth_code": "1"} },
		"extra invalid key": func(r *MicroPayRequest) { r.Extra = map[string]string{"": "1"} },
	} {
		t.Run(name, func(t *testing.T) {
			c, s := setup(t)
			r := testMicroPay()
			edit(r)
			_, err := c.MicroPay(context.Background(), r)
			wantIs(t, err, ErrInvalidArgument)
			if s.hits.Load() != 0 {
				t.Error("sent")
			}
		})
	}
}

func TestReverse(t *testing.T) {
	c, s := setup(t)
	s.handle("/secapi/pay/reverse", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"transaction_id": "4200000001202611290000000001", "out_trade_no": "M2026112900001"}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"recall": "N"})
	})
	resp, err := c.Reverse(context.Background(), "4200000001202611290000000001", "M2026112900001")
	if err != nil || resp.Recall {
		t.Fatalf("%+v %v", resp, err)
	}
}

// A failed reverse still returns the answer, whose recall says whether to
// call again.
func TestReverseRecall(t *testing.T) {
	c, s := setup(t)
	s.handle("/secapi/pay/reverse", func(w http.ResponseWriter, r *http.Request) {
		answerCode(t, w, wxpay.SignTypeMD5, testKey, ErrSystemError, map[string]string{"recall": "Y"})
	})
	resp, err := c.Reverse(context.Background(), "", "M2026112900001")
	wantIs(t, err, ErrSystemError, ErrOutcomeUnknown)
	if resp == nil || !resp.Recall {
		t.Fatalf("%+v", resp)
	}
}

// scripted serves a path with one handler per request, in order; the last
// one serves every request after it.
type scripted struct {
	mu    sync.Mutex
	steps []http.HandlerFunc
	n     int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	s.mu.Unlock()
	h(w, r)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func script(steps ...http.HandlerFunc) *scripted { return &scripted{steps: steps} }

// The answers of the micropay flow.
func mpPaid(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		readRequest(t, r, wxpay.SignTypeMD5, testKey)
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"trade_type": "MICROPAY", "out_trade_no": "M2026112900001",
			"transaction_id": "4200000001202611290000000001", "total_fee": "1200", "cash_fee": "1200", "time_end": "20261129100501"})
	}
}

func mpCode(t *testing.T, code ErrorCode, extra map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		readRequest(t, r, wxpay.SignTypeMD5, testKey)
		answerCode(t, w, wxpay.SignTypeMD5, testKey, code, extra)
	}
}

func mpQuery(t *testing.T, state wxpay.TradeState) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		if f["out_trade_no"] != "M2026112900001" {
			t.Errorf("query of %q", f["out_trade_no"])
		}
		m := map[string]string{"trade_state": string(state), "out_trade_no": "M2026112900001", "total_fee": "1200"}
		if state == wxpay.TradeStateSuccess {
			m["transaction_id"], m["cash_fee"], m["time_end"] = "4200000001202611290000000001", "1200", "20261129100531"
		}
		answerOK(t, w, wxpay.SignTypeMD5, testKey, m)
	}
}

// fastPolicy is protocol.md §10's policy in milliseconds. Its deadline is
// long: the flows that end before it do not depend on timing; those that
// must reach it set a short one.
var fastPolicy = MicroPayPolicy{PollInterval: 5 * time.Millisecond, Deadline: 5 * time.Second,
	ReverseAfter: 120 * time.Millisecond, FirstQuery: 5 * time.Millisecond, MaxReverse: 3}

// shortWait is the deadline of the flows that wait in vain. How many
// queries fit in it depends on the machine's load, so those flows do not
// count them.
const shortWait = 100 * time.Millisecond

func TestMicroPayAndWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		micropay *scripted
		query    *scripted
		reverse  *scripted
		paid     bool
		reversed bool
		deadline time.Duration // the policy's, when it must pass
		errs     []error       // nil: success
		queries  int           // -1: not counted
		reverses int
	}{
		{name: "immediate success", micropay: script(mpPaid(t)), paid: true},
		{name: "USERPAYING then paid",
			micropay: script(mpCode(t, ErrUserPaying, nil)),
			query:    script(mpQuery(t, wxpay.TradeStateUserPaying), mpQuery(t, wxpay.TradeStateUserPaying), mpQuery(t, wxpay.TradeStateSuccess)),
			paid:     true, queries: 3},
		{name: "SYSTEMERROR then paid",
			micropay: script(mpCode(t, ErrSystemError, nil)),
			query:    script(mpQuery(t, wxpay.TradeStateSuccess)),
			paid:     true, queries: 1},
		{name: "BANKERROR, query fails once, then paid",
			micropay: script(mpCode(t, ErrBankError, nil)),
			query:    script(mpCode(t, ErrSystemError, nil), mpQuery(t, wxpay.TradeStateSuccess)),
			paid:     true, queries: 2},
		{name: "lost answer then paid",
			micropay: script(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "", http.StatusBadGateway) }),
			query:    script(mpQuery(t, wxpay.TradeStateSuccess)),
			paid:     true, queries: 1},
		{name: "USERPAYING forever, reversed after a recall",
			micropay: script(mpCode(t, ErrUserPaying, nil)),
			query:    script(mpQuery(t, wxpay.TradeStateUserPaying)),
			reverse: script(mpCode(t, ErrSystemError, map[string]string{"recall": "Y"}),
				func(w http.ResponseWriter, r *http.Request) {
					readRequest(t, r, wxpay.SignTypeMD5, testKey)
					answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"recall": "N"})
				}),
			reversed: true, queries: -1, reverses: 2, deadline: shortWait},
		{name: "USERPAYING forever, nothing to reverse",
			micropay: script(mpCode(t, ErrUserPaying, nil)),
			query:    script(mpQuery(t, wxpay.TradeStateNotPay)),
			reverse:  script(mpCode(t, ErrOrderNotExist, map[string]string{"recall": "N"})),
			reversed: true, queries: -1, reverses: 1, deadline: shortWait},
		{name: "reverse refused",
			micropay: script(mpCode(t, ErrUserPaying, nil)),
			query:    script(mpQuery(t, wxpay.TradeStateUserPaying)),
			reverse:  script(mpCode(t, ErrReverseExpire, map[string]string{"recall": "N"})),
			errs:     []error{ErrOutcomeUnknown, ErrReverseExpire}, queries: -1, reverses: 1, deadline: shortWait},
		{name: "AUTHCODEEXPIRE",
			micropay: script(mpCode(t, ErrAuthCodeExpire, nil)),
			errs:     []error{ErrMicroPayFailed, ErrAuthCodeExpire}},
		{name: "NOTENOUGH",
			micropay: script(mpCode(t, ErrNotEnough, nil)),
			errs:     []error{ErrMicroPayFailed, ErrNotEnough}},
		{name: "query ORDERNOTEXIST",
			micropay: script(mpCode(t, ErrSystemError, nil)),
			query:    script(mpCode(t, ErrOrderNotExist, nil)),
			errs:     []error{ErrMicroPayFailed, ErrOrderNotExist}, queries: 1},
		{name: "query PAYERROR",
			micropay: script(mpCode(t, ErrUserPaying, nil)),
			query:    script(mpQuery(t, wxpay.TradeStatePayError)),
			errs:     []error{ErrMicroPayFailed}, queries: 1},
		{name: "query REVOKED",
			micropay: script(mpCode(t, ErrUserPaying, nil)),
			query:    script(mpQuery(t, wxpay.TradeStateRevoked)),
			errs:     []error{ErrMicroPayFailed}, queries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			s.handler("/pay/micropay", tt.micropay)
			for path, h := range map[string]*scripted{"/pay/orderquery": tt.query, "/secapi/pay/reverse": tt.reverse} {
				if h != nil {
					s.handler(path, h)
				}
			}
			p := fastPolicy
			if tt.deadline > 0 {
				p.Deadline = tt.deadline
			}
			res, err := c.MicroPayAndWait(context.Background(), testMicroPay(), p)
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if res.Paid != tt.paid || res.Reversed != tt.reversed {
					t.Fatalf("%+v", res)
				}
				if tt.paid && (res.Payment.TransactionID != "4200000001202611290000000001" || res.Payment.TotalFee != 1200) {
					t.Errorf("payment %+v", res.Payment)
				}
			} else {
				if res != nil {
					t.Errorf("result %+v with an error", res)
				}
				wantIs(t, err, tt.errs...)
			}
			if tt.micropay.count() != 1 {
				t.Errorf("%d micropay calls", tt.micropay.count())
			}
			if tt.query != nil && tt.queries >= 0 && tt.query.count() != tt.queries {
				t.Errorf("%d queries, want %d", tt.query.count(), tt.queries)
			}
			if tt.reverse != nil && tt.reverse.count() != tt.reverses {
				t.Errorf("%d reverses, want %d", tt.reverse.count(), tt.reverses)
			}
		})
	}
}

// The reverse waits for ReverseAfter since the payment request, however
// soon the deadline passes.
func TestMicroPayAndWaitReverseAfter(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	s.handler("/pay/micropay", script(mpCode(t, ErrUserPaying, nil)))
	s.handler("/pay/orderquery", script(mpQuery(t, wxpay.TradeStateUserPaying)))
	var reversedAt atomic.Int64
	s.handle("/secapi/pay/reverse", func(w http.ResponseWriter, r *http.Request) {
		reversedAt.Store(time.Now().UnixNano())
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"recall": "N"})
	})
	p := fastPolicy
	p.Deadline, p.ReverseAfter = 10*time.Millisecond, 150*time.Millisecond
	start := time.Now()
	res, err := c.MicroPayAndWait(context.Background(), testMicroPay(), p)
	if err != nil || !res.Reversed {
		t.Fatalf("%+v %v", res, err)
	}
	if d := time.Unix(0, reversedAt.Load()).Sub(start); d < p.ReverseAfter {
		t.Errorf("reversed %v after the payment request, before ReverseAfter %v", d, p.ReverseAfter)
	}
}

// The caller's context ends the wait.
func TestMicroPayAndWaitContext(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	s.handler("/pay/micropay", script(mpCode(t, ErrUserPaying, nil)))
	s.handler("/pay/orderquery", script(mpQuery(t, wxpay.TradeStateUserPaying)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p := fastPolicy
	p.Deadline, p.ReverseAfter = time.Minute, time.Minute
	_, err := c.MicroPayAndWait(ctx, testMicroPay(), p)
	wantIs(t, err, context.DeadlineExceeded)
}

// An invalid request is returned as such: nothing was charged, but it is
// not a micropay failure either.
func TestMicroPayAndWaitInvalid(t *testing.T) {
	c, s := setup(t)
	r := testMicroPay()
	r.TotalFee = 0
	_, err := c.MicroPayAndWait(context.Background(), r, fastPolicy)
	wantIs(t, err, ErrInvalidArgument)
	if errors.Is(err, ErrMicroPayFailed) || s.hits.Load() != 0 {
		t.Errorf("%v, %d requests", err, s.hits.Load())
	}
}
