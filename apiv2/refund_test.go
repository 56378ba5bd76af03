package apiv2

import (
	"context"
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

func TestRefund(t *testing.T) {
	c, s := setup(t)
	s.handle("/secapi/pay/refund", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{
			"out_trade_no": "T2026112900001", "out_refund_no": "R2026112900001", "total_fee": "1999", "refund_fee": "999",
			"refund_fee_type": "CNY", "refund_desc": "缺货", "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS",
			"notify_url": "https://shop.example/refund-notify", "op_user_id": "1225312702",
		}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{
			"transaction_id": "4200000001202611290000000001", "out_trade_no": "T2026112900001",
			"out_refund_no": "R2026112900001", "refund_id": "50000000382026112900001", "refund_fee": "999",
			"settlement_refund_fee": "899", "total_fee": "1999", "settlement_total_fee": "1899", "fee_type": "CNY",
			"cash_fee": "1799", "cash_refund_fee": "799", "coupon_refund_fee": "100", "coupon_refund_count": "1",
			"coupon_type_0": "CASH", "coupon_refund_fee_0": "100", "coupon_refund_id_0": "10000",
		})
	})
	req := testRefund()
	req.RefundFeeType, req.RefundDesc, req.RefundAccount = "CNY", "缺货", wxpay.RefundAccountUnsettled
	req.NotifyURL = "https://shop.example/refund-notify"
	req.Extra = map[string]string{"op_user_id": testMchID} // the legacy field of 2017-era docs
	resp, err := c.Refund(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := RefundResponse{
		TransactionID: "4200000001202611290000000001", OutTradeNo: "T2026112900001", OutRefundNo: "R2026112900001",
		RefundID: "50000000382026112900001", RefundFee: 999, SettlementRefundFee: 899, TotalFee: 1999, SettlementTotalFee: 1899,
		FeeType: "CNY", CashFee: 1799, CashRefundFee: 799, CouponRefundFee: 100, CouponRefundCount: 1,
	}
	got := *resp
	got.Envelope = Envelope{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if resp.Get("coupon_refund_id_0") != "10000" {
		t.Error("coupon fields not kept")
	}
}

// An answer about another refund, or another amount, is not an answer to
// this call.
func TestRefundAnswerMismatch(t *testing.T) {
	for name, fields := range map[string]map[string]string{
		"other out_refund_no": {"out_refund_no": "R2026112900002", "refund_fee": "999"},
		"other amount":        {"out_refund_no": "R2026112900001", "refund_fee": "1999"},
		"no refund_fee":       {"out_refund_no": "R2026112900001"},
		"amount not a number": {"out_refund_no": "R2026112900001", "refund_fee": "9.99"},
	} {
		t.Run(name, func(t *testing.T) {
			c, s := setup(t)
			s.handle("/secapi/pay/refund", func(w http.ResponseWriter, r *http.Request) {
				answerOK(t, w, wxpay.SignTypeMD5, testKey, fields)
			})
			_, err := c.Refund(context.Background(), testRefund())
			wantIs(t, err, ErrOutcomeUnknown)
		})
	}
}

func TestRefundInvalid(t *testing.T) {
	tests := map[string]func(*RefundRequest){
		"no order":                 func(r *RefundRequest) { r.OutTradeNo, r.TransactionID = "", "" },
		"no out_refund_no":         func(r *RefundRequest) { r.OutRefundNo = "" },
		"out_refund_no 65 chars":   func(r *RefundRequest) { r.OutRefundNo = strings.Repeat("R", 65) },
		"out_refund_no bad char":   func(r *RefundRequest) { r.OutRefundNo = "R-2026/1" },
		"zero total":               func(r *RefundRequest) { r.TotalFee = 0 },
		"zero refund":              func(r *RefundRequest) { r.RefundFee = 0 },
		"negative refund":          func(r *RefundRequest) { r.RefundFee = -100 },
		"refund above total":       func(r *RefundRequest) { r.RefundFee = r.TotalFee + 1 },
		"notify URL with a query":  func(r *RefundRequest) { r.NotifyURL = "https://shop.example/n?x=1" },
		"extra duplicates a field": func(r *RefundRequest) { r.Extra = map[string]string{"refund_fee": "1"} },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			c, s := setup(t)
			req := testRefund()
			edit(req)
			_, err := c.Refund(context.Background(), req)
			wantIs(t, err, ErrInvalidArgument)
			if s.hits.Load() != 0 {
				t.Error("sent")
			}
		})
	}
	// 64 characters is the maximum, and allowed.
	c, s := setup(t)
	serveOK(t, s, nil)
	s.handle("/secapi/pay/refund", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"out_refund_no": f["out_refund_no"], "refund_fee": f["refund_fee"]})
	})
	req := testRefund()
	req.OutRefundNo = strings.Repeat("R", 60) + "_-|*"
	if _, err := c.Refund(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestRefundQuery(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/refundquery", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"out_trade_no": "T2026112900001", "offset": "10"}))
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{
			"transaction_id": "4200000001202611290000000001", "out_trade_no": "T2026112900001", "total_fee": "1999",
			"settlement_total_fee": "1999", "fee_type": "CNY", "cash_fee": "1999", "total_refund_count": "13", "refund_count": "3",

			"out_refund_no_0": "R10", "refund_id_0": "5000000001", "refund_channel_0": "ORIGINAL", "refund_fee_0": "100",
			"settlement_refund_fee_0": "100", "refund_status_0": "SUCCESS", "refund_account_0": "REFUND_SOURCE_UNSETTLED_FUNDS",
			"refund_recv_accout_0": "支付用户的零钱", "refund_success_time_0": "2026-11-29 10:30:00",
			"coupon_refund_fee_0": "10", "coupon_refund_count_0": "1", "coupon_refund_id_0_0": "c1", "coupon_refund_fee_0_0": "10",

			"out_refund_no_1": "R11", "refund_id_1": "5000000002", "refund_channel_1": "BALANCE", "refund_fee_1": "200",
			"refund_status_1": "PROCESSING", "refund_recv_accout_1": "招商银行信用卡0403",

			"out_refund_no_2": "R12", "refund_id_2": "5000000003", "refund_fee_2": "300", "refund_status_2": "REFUNDCLOSE",
			"refund_account_2": "REFUND_SOURCE_RECHARGE_FUNDS",
		})
	})
	resp, err := c.RefundQuery(context.Background(), &RefundQueryRequest{OutTradeNo: "T2026112900001", Offset: 10})
	if err != nil {
		t.Fatal(err)
	}
	if resp.TransactionID != "4200000001202611290000000001" || resp.TotalFee != 1999 || resp.SettlementTotalFee != 1999 ||
		resp.CashFee != 1999 || resp.FeeType != "CNY" || resp.TotalRefundCount != 13 || len(resp.Refunds) != 3 {
		t.Fatalf("%+v", resp)
	}
	want := []RefundRecord{
		{OutRefundNo: "R10", RefundID: "5000000001", RefundChannel: "ORIGINAL", RefundFee: 100, SettlementRefundFee: 100,
			CouponRefundFee: 10, CouponRefundCount: 1, Status: wxpay.RefundStatusSuccess, RefundAccount: wxpay.RefundAccountUnsettled,
			RecvAccount: "支付用户的零钱", SuccessTime: time.Date(2026, 11, 29, 10, 30, 0, 0, wxpay.China)},
		{OutRefundNo: "R11", RefundID: "5000000002", RefundChannel: "BALANCE", RefundFee: 200, Status: wxpay.RefundStatusProcessing,
			RecvAccount: "招商银行信用卡0403"},
		{OutRefundNo: "R12", RefundID: "5000000003", RefundFee: 300, Status: wxpay.RefundStatusClosed,
			RefundAccount: wxpay.RefundAccountRecharge},
	}
	for i, w := range want {
		g := resp.Refunds[i]
		if !g.SuccessTime.Equal(w.SuccessTime) {
			t.Errorf("refund %d success time %v, want %v", i, g.SuccessTime, w.SuccessTime)
		}
		g.SuccessTime, w.SuccessTime = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("refund %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
	if resp.Get("coupon_refund_id_0_0") != "c1" {
		t.Error("nested coupon fields not kept")
	}
}

func TestRefundQueryByEachNumber(t *testing.T) {
	for _, tt := range []struct {
		req   RefundQueryRequest
		field string
	}{
		{RefundQueryRequest{RefundID: "5000000001"}, "refund_id"},
		{RefundQueryRequest{OutRefundNo: "R10"}, "out_refund_no"},
		{RefundQueryRequest{TransactionID: "4200000001202611290000000001"}, "transaction_id"},
		{RefundQueryRequest{OutTradeNo: "T2026112900001"}, "out_trade_no"},
	} {
		c, s := setup(t)
		s.handle("/pay/refundquery", func(w http.ResponseWriter, r *http.Request) {
			f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
			if f[tt.field] == "" || len(f) != 5 {
				t.Errorf("request %v, want only %s", f, tt.field)
			}
			answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"refund_count": "0"})
		})
		resp, err := c.RefundQuery(context.Background(), &tt.req)
		if err != nil || len(resp.Refunds) != 0 {
			t.Errorf("%s: %v %v", tt.field, resp, err)
		}
	}
}

// Refund records that are missing or unreadable make the answer unusable:
// the outcome is unknown, never a shorter list.
func TestRefundQueryNonsense(t *testing.T) {
	for name, fields := range map[string]map[string]string{
		"count above records":  {"refund_count": "2", "out_refund_no_0": "R1", "refund_status_0": "SUCCESS"},
		"unknown status":       {"refund_count": "1", "out_refund_no_0": "R1", "refund_status_0": "DONE"},
		"no out_refund_no":     {"refund_count": "1", "refund_status_0": "SUCCESS"},
		"bad success time":     {"refund_count": "1", "out_refund_no_0": "R1", "refund_status_0": "SUCCESS", "refund_success_time_0": "20261129103000"},
		"bad amount":           {"refund_count": "1", "out_refund_no_0": "R1", "refund_status_0": "SUCCESS", "refund_fee_0": "1.00"},
		"count over 50":        {"refund_count": "51"},
		"count not a number":   {"refund_count": "three"},
		"negative total count": {"refund_count": "0", "total_refund_count": "-1"},
	} {
		t.Run(name, func(t *testing.T) {
			c, s := setup(t)
			s.handle("/pay/refundquery", func(w http.ResponseWriter, r *http.Request) {
				answerOK(t, w, wxpay.SignTypeMD5, testKey, fields)
			})
			_, err := c.RefundQuery(context.Background(), &RefundQueryRequest{OutRefundNo: "R1"})
			wantIs(t, err, ErrOutcomeUnknown)
		})
	}
}

// Vector C of protocol.md §14.
const (
	vectorCKey    = "192006250b4c09247ec02edce69f6a2d"
	vectorC1      = "bDP/xixH0hFEaZusu714U7rO4wZDF5SwkOt7MIFNUaladrdy0yQefoW3LYmmUmF3r7t23yZjibKV29fZKVgeUQ=="
	vectorC2      = "4gS8kbcHysCW7bHqyEU0M9umdFVGKPOUBs+y0jA3Bljjy+zBi7XfRtKyHJjZQXO9WGi3J75qhioPhrvXs/3y9sHvZUvbUUNaQhLw8FBk7Qe4YEQ+TjZKGdP+I/bM+suj1uZ0x2oiR8c9vzKKJJiDqfIbuGAxC5PN+pND/P9mBjLOLXem62DhLzg2atZzVJ3hguPBJC8ehgVExw5EbGI6J+s34ORfwJXaAGkYByC7OmhApO35hRocOjzZRT2OsEMXob6i0XybelLc7hu2oGCNBux7duZDaLaa7peckA4Utx0q7vBNBvabxkpye1XAuJnd0/vChgqvAnkXoEvFtLPtPUNJrOKTwtjVdk47X08BlRass8j2X4eD96nr7NnfN+rPmI5SWRvs09zwWa21C+vYLRs+77gl2XYMkHMukDWGvhLFdbCutMJPl/3Wa/ITkkTDp9E0Lq2LVWp7IMoxwqOJUgqDivi0WvkaI+V+RJwd1KFbARN/jIJ7q+BPvKpneBZOpcgS2DKjNePJamwB8U04ZWgMj0Px65R1XSlG0pweBujQVEUCDXmUhDX4XZWaSkI52teWO0kgSYgZorLgHep19zHtC6NMVu1faooYQ0QzIRNWgrZobi8lJSnFiVrd2/ML1W3da+A/Lp/SGwxWTeO9Szva8s0nD5i6JX5XAq0BxxzPZuCghNs49je/vQeTzEObTuENpwTbm4+DcZQUkW9Gyhfd7D+0crL/3SPYsEu27WHAxxRqC8TFpqu3gKxheAMSqRkShpZ7CFNMiSk8TdfqJqCFB2oXa6+X2jDEbZYEwtL7u1xIizzC/QIS3w6unlAjDaVWWZzer/nR6jD6d7S/E13hGkJW9+HlWKdqlCNnIa/aULnSjCdBmoFVfg8ablUz3yGObL1X1Lg15NMKGt6nM+Z8e+dh0jaxIHGUVPQOcDcgTuMJah7bkKcJsa1xfpEcm7nevL4s9pqVOwfGaINavqHUM0Q3Hr2MZ1IckfXBOUCFyHY8ek1Gsq9eoo6doxX7WtqrGsDobboeIJjbrn5uMdQ04vPBZDA/w58/z363rww="
	vectorC2SHA   = "3974e74597c1f3bab203474ef50cc715316df68a841db7935bb60298d3a39894"
	vectorC2Plain = "<root>\n<out_refund_no><![CDATA[R20170330001]]></out_refund_no>\n<out_trade_no><![CDATA[T20170330001]]></out_trade_no>\n<refund_account><![CDATA[REFUND_SOURCE_UNSETTLED_FUNDS]]></refund_account>\n<refund_fee><![CDATA[100]]></refund_fee>\n<refund_id><![CDATA[50000000382017033001234567890]]></refund_id>\n<refund_recv_accout><![CDATA[支付用户零钱]]></refund_recv_accout>\n<refund_request_source><![CDATA[API]]></refund_request_source>\n<refund_status><![CDATA[SUCCESS]]></refund_status>\n<settlement_refund_fee><![CDATA[100]]></settlement_refund_fee>\n<settlement_total_fee><![CDATA[100]]></settlement_total_fee>\n<success_time><![CDATA[2017-03-30 10:30:00]]></success_time>\n<total_fee><![CDATA[100]]></total_fee>\n<transaction_id><![CDATA[4200000001201703300123456789]]></transaction_id>\n</root>"
)

// vectorCClient is a client of the test merchant whose API key is vector
// C's.
func vectorCClient(t testing.TB) *Client {
	t.Helper()
	cfg := testConfig()
	cfg.APIKey = vectorCKey
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refundNotify is the outer XML of a refund notify for the test merchant.
func refundNotify(t testing.TB, reqInfo string, edit func(map[string]string)) []byte {
	m := map[string]string{"return_code": "SUCCESS", "return_msg": "OK", "appid": testAppID, "mch_id": testMchID,
		"nonce_str": "0b9f35f484df17a732e537c37708d1d0", "req_info": reqInfo}
	if edit != nil {
		edit(m)
	}
	return unsignedXML(t, m)
}

func TestParseRefundNotifyVectorC2(t *testing.T) {
	plain, err := wxcrypto.DecryptReqInfo(vectorCKey, vectorC2)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != vectorC2SHA || string(plain) != vectorC2Plain {
		t.Fatalf("vector C2 plaintext differs:\n%s", plain)
	}
	n, err := vectorCClient(t).ParseRefundNotify(refundNotify(t, vectorC2, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := RefundNotify{
		AppID: testAppID, MchID: testMchID, NonceStr: "0b9f35f484df17a732e537c37708d1d0",
		TransactionID: "4200000001201703300123456789", OutTradeNo: "T20170330001", RefundID: "50000000382017033001234567890",
		OutRefundNo: "R20170330001", TotalFee: 100, SettlementTotalFee: 100, RefundFee: 100, SettlementRefundFee: 100,
		Status: wxpay.RefundStatusSuccess, RecvAccount: "支付用户零钱", RefundAccount: wxpay.RefundAccountUnsettled, RequestSource: "API",
	}
	got := *n
	if !got.SuccessTime.Equal(time.Date(2017, 3, 30, 10, 30, 0, 0, wxpay.China)) {
		t.Errorf("success time %v", got.SuccessTime)
	}
	if len(got.Fields) != 13 || lookup(got.Fields, "refund_request_source") != "API" {
		t.Errorf("fields %v", got.Fields)
	}
	got.SuccessTime, got.Fields = time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// C1 decrypts (its plaintext is only a refund_status) but is not a usable
// notify: malformed, not a decryption failure.
func TestParseRefundNotifyVectorC1(t *testing.T) {
	plain, err := wxcrypto.DecryptReqInfo(vectorCKey, vectorC1)
	if err != nil || string(plain) != "<root><refund_status><![CDATA[SUCCESS]]></refund_status></root>" {
		t.Fatalf("%q %v", plain, err)
	}
	_, err = vectorCClient(t).ParseRefundNotify(refundNotify(t, vectorC1, nil))
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.Reason != ReasonMalformed {
		t.Fatalf("error %v", err)
	}
}

// ecbBlocks splits a req_info into its 16-byte blocks, and joins them back.
func ecbBlocks(t testing.TB, reqInfo string) [][]byte {
	ct, err := base64.StdEncoding.DecodeString(reqInfo)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := 0; i < len(ct); i += aes.BlockSize {
		out = append(out, ct[i:i+aes.BlockSize])
	}
	return out
}

func ecbJoin(blocks [][]byte) string {
	var b []byte
	for _, x := range blocks {
		b = append(b, x...)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// encryptRaw encrypts plaintext, whose length is a multiple of 16, without
// adding padding: for building bad padding.
func encryptRaw(t testing.TB, key string, plaintext []byte) string {
	k := wxcrypto.ReqInfoKey(key)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(plaintext))
	for i := 0; i < len(out); i += aes.BlockSize {
		block.Encrypt(out[i:i+aes.BlockSize], plaintext[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(out)
}

// D4 and N10: forged, spliced and foreign req_info values are refused, and
// nothing panics.
func TestParseRefundNotifyForged(t *testing.T) {
	c := vectorCClient(t)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 256)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	other := strings.Replace(vectorC2Plain, "R20170330001", "R20170330999", 1)
	otherInfo := wxcrypto.EncryptReqInfo(vectorCKey, []byte(other))
	swapped := ecbBlocks(t, vectorC2)
	swapped[0], swapped[5] = ecbBlocks(t, otherInfo)[5], swapped[0]
	truncated := ecbBlocks(t, vectorC2)
	truncated = truncated[:len(truncated)-1]
	padded := func(last byte) string {
		p := []byte(vectorC2Plain)
		for len(p)%aes.BlockSize != aes.BlockSize-1 {
			p = append(p, ' ')
		}
		return encryptRaw(t, vectorCKey, append(p, last))
	}
	tests := []struct {
		name   string
		body   []byte
		reason NotifyReason
		is     error
	}{
		{"random base64", refundNotify(t, base64.StdEncoding.EncodeToString(random), nil), ReasonDecrypt, nil},
		{"not base64", refundNotify(t, "%%%not base64%%%", nil), ReasonDecrypt, wxcrypto.ErrBase64},
		{"URL-safe base64", refundNotify(t, strings.NewReplacer("+", "-", "/", "_").Replace(vectorC2), nil), ReasonDecrypt, wxcrypto.ErrBase64},
		{"length not a multiple of 16", refundNotify(t, base64.StdEncoding.EncodeToString(random[:20]), nil), ReasonDecrypt, wxcrypto.ErrLength},
		{"empty req_info", refundNotify(t, "", nil), ReasonDecrypt, nil},
		{"no req_info", refundNotify(t, "", func(m map[string]string) { delete(m, "req_info") }), ReasonDecrypt, nil},
		{"padding 0", refundNotify(t, padded(0), nil), ReasonDecrypt, wxcrypto.ErrPadding},
		{"padding 17", refundNotify(t, padded(17), nil), ReasonDecrypt, wxcrypto.ErrPadding},
		{"padding 255", refundNotify(t, padded(255), nil), ReasonDecrypt, wxcrypto.ErrPadding},
		{"wrong key", refundNotify(t, wxcrypto.EncryptReqInfo(otherKey, []byte(vectorC2Plain)), nil), ReasonDecrypt, nil},
		{"blocks of two genuine notifies swapped", refundNotify(t, ecbJoin(swapped), nil), ReasonDecrypt, nil},
		{"last block dropped", refundNotify(t, ecbJoin(truncated), nil), ReasonDecrypt, nil},
		{"another merchant's mch_id", refundNotify(t, vectorC2, func(m map[string]string) { m["mch_id"] = "1900000109" }), ReasonMerchant, nil},
		{"another app", refundNotify(t, vectorC2, func(m map[string]string) { m["appid"] = "wx0000000000000000" }), ReasonMerchant, nil},
		{"no mch_id", refundNotify(t, vectorC2, func(m map[string]string) { delete(m, "mch_id") }), ReasonMerchant, nil},
		{"return_code FAIL", refundNotify(t, vectorC2, func(m map[string]string) { m["return_code"] = "FAIL" }), ReasonFailure, nil},
		{"no return_code", refundNotify(t, vectorC2, func(m map[string]string) { delete(m, "return_code") }), ReasonFailure, nil},
		{"DOCTYPE", []byte(`<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><req_info>&e;</req_info></xml>`), ReasonMalformed, ErrXMLDoctype},
		{"duplicate req_info", []byte("<xml><return_code>SUCCESS</return_code><mch_id>1225312702</mch_id><req_info>" + vectorC2 +
			"</req_info><req_info>" + vectorC1 + "</req_info></xml>"), ReasonMalformed, ErrXMLDuplicate},
		{"too large", refundNotify(t, vectorC2, func(m map[string]string) { m["pad"] = strings.Repeat("x", MaxNotifySize) }), ReasonMalformed, ErrXMLTooLarge},
		{"inner XML not flat", refundNotify(t, wxcrypto.EncryptReqInfo(vectorCKey, []byte("<root><a><b>1</b></a></root>")), nil), ReasonDecrypt, ErrXMLNested},
		{"inner DOCTYPE", refundNotify(t, wxcrypto.EncryptReqInfo(vectorCKey, []byte(`<!DOCTYPE root [<!ENTITY e "x">]><root/>`)), nil), ReasonDecrypt, ErrXMLDoctype},
		{"inner not final", refundNotify(t, wxcrypto.EncryptReqInfo(vectorCKey,
			[]byte(strings.Replace(vectorC2Plain, "[SUCCESS]", "[PROCESSING]", 1))), nil), ReasonMalformed, nil},
		{"inner amount in yuan", refundNotify(t, wxcrypto.EncryptReqInfo(vectorCKey,
			[]byte(strings.Replace(vectorC2Plain, "<refund_fee><![CDATA[100]]>", "<refund_fee><![CDATA[1.00]]>", 1))), nil), ReasonMalformed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := c.ParseRefundNotify(tt.body)
			var ne *NotifyError
			if !errors.As(err, &ne) {
				t.Fatalf("accepted %+v (error %v)", n, err)
			}
			if ne.Reason != tt.reason {
				t.Errorf("reason %s, want %s (%v)", ne.Reason, tt.reason, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if strings.Contains(err.Error(), vectorCKey) {
				t.Error("the key is in the error")
			}
		})
	}
}

// ECB has no integrity (reliability.md D4): whole blocks of one genuine
// req_info moved into another at the same offset decrypt to a notify that
// parses, with a value neither notify had. This is why ParseRefundNotify's
// result must be matched against a refund we created (and confirmed with
// RefundQuery) before anything is released.
func TestParseRefundNotifyECBSpliceIsNotAuthenticated(t *testing.T) {
	c := vectorCClient(t)
	// Two notifies of the same layout whose amounts sit in the same block.
	a := vectorC2Plain
	b := strings.Replace(vectorC2Plain, "<refund_fee><![CDATA[100]]>", "<refund_fee><![CDATA[900]]>", 1)
	ab, bb := ecbBlocks(t, wxcrypto.EncryptReqInfo(vectorCKey, []byte(a))), ecbBlocks(t, wxcrypto.EncryptReqInfo(vectorCKey, []byte(b)))
	diff := -1
	for i := range ab {
		if string(ab[i]) != string(bb[i]) {
			if diff >= 0 {
				t.Fatal("the amounts span two blocks")
			}
			diff = i
		}
	}
	ab[diff] = bb[diff]
	n, err := c.ParseRefundNotify(refundNotify(t, ecbJoin(ab), nil))
	if err != nil {
		t.Fatal(err)
	}
	if n.RefundFee != 900 || n.OutRefundNo != "R20170330001" || n.SettlementRefundFee != 100 {
		t.Fatalf("%+v", n)
	}
}

func TestRefundNotifyHandler(t *testing.T) {
	c := vectorCClient(t)
	var calls atomic.Int64
	var rejected atomic.Value
	h := c.RefundNotifyHandler(func(ctx context.Context, n *RefundNotify) error {
		calls.Add(1)
		if n.OutRefundNo != "R20170330001" || n.RefundFee != 100 || n.Status != wxpay.RefundStatusSuccess {
			t.Errorf("%+v", n)
		}
		return nil
	}, NotifyHandlerOptions{OnReject: func(r NotifyReason, err error) { rejected.Store(r) }})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wxpay/refund", strings.NewReader(string(refundNotify(t, vectorC2, nil)))))
	if rec.Code != 200 || rec.Body.String() != string(NotifySuccess) || calls.Load() != 1 {
		t.Fatalf("%d %q, %d calls", rec.Code, rec.Body, calls.Load())
	}

	// A forged one is answered FAIL, and the function is not called.
	rec = httptest.NewRecorder()
	forged := refundNotify(t, wxcrypto.EncryptReqInfo(otherKey, []byte(vectorC2Plain)), nil)
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wxpay/refund", strings.NewReader(string(forged))))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "FAIL") || calls.Load() != 1 {
		t.Fatalf("%d %q, %d calls", rec.Code, rec.Body, calls.Load())
	}
	if r, _ := rejected.Load().(NotifyReason); r != ReasonDecrypt {
		t.Errorf("OnReject reason %q", r)
	}
}
