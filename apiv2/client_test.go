package apiv2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

// jsapiOrder is a valid mini-program order.
func jsapiOrder() *UnifiedOrderRequest {
	return &UnifiedOrderRequest{
		Body: "小程序-咖啡", OutTradeNo: "T2026112900001", TotalFee: 1999, SpbillCreateIP: "203.0.113.7",
		TradeType: wxpay.TradeTypeJSAPI, OpenID: testOpenID,
	}
}

func testRefund() *RefundRequest {
	return &RefundRequest{OutTradeNo: "T2026112900001", OutRefundNo: "R2026112900001", TotalFee: 1999, RefundFee: 999}
}

func testMicroPay() *MicroPayRequest {
	return &MicroPayRequest{AuthCode: "134567890123456789", Body: "门店-咖啡", OutTradeNo: "M2026112900001", TotalFee: 1200, SpbillCreateIP: "203.0.113.7"}
}

var billDay = time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)

// testBill and testFundFlow are the smallest valid bills.
const (
	testBill = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n" +
		"`2026-11-28 13:51:31,`wx426b3015555a46be,`1225312702,`0,`,`4200000001202611280000000001,`T2026112800001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`19.99,`0.00,`0,`0,`0.00,`0.00,`,`,`小程序-咖啡,`,`0.12000,`0.60%,`19.99,`0.00,`\r\n" +
		"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n" +
		"`1,`19.99,`0.00,`0.00,`0.12000,`19.99,`0.00\r\n"
	testFundFlow = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号\r\n" +
		"`2026-11-28 09:15:02,`4200000001202611280000000001,`1225312702202611280000000001,`交易,`交易,`收入,`19.99,`119.99,`system,`,`\r\n" +
		"资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\r\n" +
		"`1,`1,`19.99,`0,`0.00\r\n"
)

// apiCase is one API of the client, for the tests every API must pass.
type apiCase struct {
	name    string
	path    string
	call    func(ctx context.Context, c *Client) error // a valid call
	invalid func(ctx context.Context, c *Client) error // a call the client must refuse; nil when there is none
	ok      map[string]string                          // a successful answer, beyond the envelope
	// codes are the err_code values protocol.md lists for the API.
	codes    []ErrorCode
	unsigned bool   // answers carry no sign (report, getsignkey)
	bill     string // a successful answer is this bill, not XML
}

// Codes with no constant in the package.
const (
	codeRequirePost ErrorCode = "REQUIRE_POST_METHOD"
	codePostEmpty   ErrorCode = "POST_DATA_EMPTY"
	codeNotUTF8     ErrorCode = "NOT_UTF8"
	codeError       ErrorCode = "ERROR"
)

// unknownCodes are the codes after which the outcome is unknown (protocol.md
// §3.1, §5.8); every other code is a definite failure.
var unknownCodes = map[ErrorCode]bool{"SYSTEMERROR": true, "BANKERROR": true, "USERPAYING": true}

func apiCases() []apiCase {
	return []apiCase{
		{
			name: "UnifiedOrder", path: "/pay/unifiedorder",
			call: func(ctx context.Context, c *Client) error { _, err := c.UnifiedOrder(ctx, jsapiOrder()); return err },
			invalid: func(ctx context.Context, c *Client) error {
				r := jsapiOrder()
				r.TotalFee = 0
				_, err := c.UnifiedOrder(ctx, r)
				return err
			},
			ok: map[string]string{"trade_type": "JSAPI", "prepay_id": testPrepayID},
			codes: []ErrorCode{ErrInvalidRequest, ErrNoAuth, ErrNotEnough, ErrOrderPaid, ErrOrderClosed, ErrSystemError,
				ErrAppIDNotExist, ErrMchIDNotExist, ErrAppIDMchIDMismatch, ErrLackParams, ErrOutTradeNoUsed, ErrSignError,
				ErrXMLFormatError, codeRequirePost, codePostEmpty, codeNotUTF8},
		},
		{
			name: "OrderQuery", path: "/pay/orderquery",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.OrderQuery(ctx, &OrderQueryRequest{OutTradeNo: "T2026112900001"})
				return err
			},
			invalid: func(ctx context.Context, c *Client) error {
				_, err := c.OrderQuery(ctx, &OrderQueryRequest{})
				return err
			},
			ok:    map[string]string{"trade_state": "NOTPAY", "out_trade_no": "T2026112900001", "total_fee": "1999"},
			codes: []ErrorCode{ErrOrderNotExist, ErrSystemError},
		},
		{
			name: "CloseOrder", path: "/pay/closeorder",
			call:    func(ctx context.Context, c *Client) error { _, err := c.CloseOrder(ctx, "T2026112900001"); return err },
			invalid: func(ctx context.Context, c *Client) error { _, err := c.CloseOrder(ctx, ""); return err },
			ok:      map[string]string{"result_msg": "OK"},
			codes: []ErrorCode{ErrOrderPaid, ErrSystemError, ErrOrderNotExist, ErrOrderClosed, ErrSignError, codeRequirePost,
				ErrXMLFormatError, ErrTradeStateError},
		},
		{
			name: "Refund", path: "/secapi/pay/refund",
			call: func(ctx context.Context, c *Client) error { _, err := c.Refund(ctx, testRefund()); return err },
			invalid: func(ctx context.Context, c *Client) error {
				r := testRefund()
				r.RefundFee = r.TotalFee + 1
				_, err := c.Refund(ctx, r)
				return err
			},
			ok: map[string]string{"out_trade_no": "T2026112900001", "out_refund_no": "R2026112900001", "refund_id": "50000000382026112900001",
				"refund_fee": "999", "total_fee": "1999", "cash_fee": "1999"},
			codes: []ErrorCode{ErrSystemError, ErrBizNeedRetry, ErrTradeOverdue, codeError, ErrUserAccountAbnorm, ErrInvalidReqTooMuch,
				ErrNotEnough, ErrInvalidTransaction, ErrParamError, ErrAppIDNotExist, ErrMchIDNotExist, ErrOrderNotExist,
				codeRequirePost, ErrSignError, ErrXMLFormatError, ErrFrequencyLimited},
		},
		{
			name: "RefundQuery", path: "/pay/refundquery",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.RefundQuery(ctx, &RefundQueryRequest{OutRefundNo: "R2026112900001"})
				return err
			},
			invalid: func(ctx context.Context, c *Client) error {
				_, err := c.RefundQuery(ctx, &RefundQueryRequest{OutRefundNo: "R1", OutTradeNo: "T1"})
				return err
			},
			ok: map[string]string{"refund_count": "1", "out_refund_no_0": "R2026112900001", "refund_status_0": "PROCESSING",
				"refund_fee_0": "999", "total_fee": "1999"},
			codes: []ErrorCode{ErrSystemError, ErrRefundNotExist, ErrInvalidTransaction, ErrParamError, ErrAppIDNotExist,
				ErrMchIDNotExist, codeRequirePost, ErrSignError, ErrXMLFormatError},
		},
		{
			name: "DownloadBill", path: "/pay/downloadbill", bill: testBill,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.DownloadBill(ctx, &DownloadBillRequest{Date: billDay})
				return err
			},
			invalid: func(ctx context.Context, c *Client) error {
				_, err := c.DownloadBill(ctx, &DownloadBillRequest{})
				return err
			},
		},
		{
			name: "DownloadBillRaw", path: "/pay/downloadbill", bill: testBill,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.DownloadBillRaw(ctx, &DownloadBillRequest{Date: billDay, Type: wxpay.BillTypeSuccess})
				return err
			},
			invalid: func(ctx context.Context, c *Client) error {
				_, err := c.DownloadBillRaw(ctx, &DownloadBillRequest{Date: billDay, Type: "PAID"})
				return err
			},
		},
		{
			name: "DownloadFundFlow", path: "/pay/downloadfundflow", bill: testFundFlow,
			call: func(ctx context.Context, c *Client) error {
				_, err := c.DownloadFundFlow(ctx, &DownloadFundFlowRequest{Date: billDay})
				return err
			},
			invalid: func(ctx context.Context, c *Client) error {
				_, err := c.DownloadFundFlow(ctx, &DownloadFundFlowRequest{Date: billDay, AccountType: "Savings"})
				return err
			},
		},
		{
			name: "MicroPay", path: "/pay/micropay",
			call: func(ctx context.Context, c *Client) error { _, err := c.MicroPay(ctx, testMicroPay()); return err },
			invalid: func(ctx context.Context, c *Client) error {
				r := testMicroPay()
				r.AuthCode = ""
				_, err := c.MicroPay(ctx, r)
				return err
			},
			ok: map[string]string{"trade_type": "MICROPAY", "out_trade_no": "M2026112900001", "transaction_id": "4200000001202611290000000001",
				"total_fee": "1200", "cash_fee": "1200", "time_end": "20261129101500"},
			codes: []ErrorCode{ErrSystemError, ErrBankError, ErrUserPaying, ErrParamError, ErrOrderPaid, ErrNoAuth, ErrAuthCodeExpire,
				ErrNotEnough, ErrNotSupportCard, ErrOrderClosed, ErrOrderReversed, ErrAuthCodeError, ErrAuthCodeInvalid,
				ErrBuyerMismatch, ErrOutTradeNoUsed, ErrInvalidRequest, ErrTradeError, ErrXMLFormatError, codeRequirePost,
				ErrSignError, ErrLackParams, codeNotUTF8, ErrAppIDNotExist, ErrMchIDNotExist, ErrAppIDMchIDMismatch},
		},
		{
			name: "Reverse", path: "/secapi/pay/reverse",
			call:    func(ctx context.Context, c *Client) error { _, err := c.Reverse(ctx, "", "M2026112900001"); return err },
			invalid: func(ctx context.Context, c *Client) error { _, err := c.Reverse(ctx, "", ""); return err },
			ok:      map[string]string{"recall": "N"},
			codes: []ErrorCode{ErrSystemError, ErrInvalidTransaction, ErrParamError, codeRequirePost, ErrSignError, ErrXMLFormatError,
				ErrReverseExpire, ErrInvalidRequest, ErrTradeError, ErrOrderNotExist, ErrUserPaying},
		},
		{
			name: "ShortURL", path: "/tools/shorturl",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ShortURL(ctx, "weixin://wxpay/bizpayurl?sign=X&appid=wx426b3015555a46be")
				return err
			},
			invalid: func(ctx context.Context, c *Client) error { _, err := c.ShortURL(ctx, ""); return err },
			ok:      map[string]string{"short_url": "weixin://wxpay/s/AbCdEf"},
			codes:   []ErrorCode{ErrSystemError, ErrSignError, ErrLackParams, ErrXMLFormatError},
		},
		{
			name: "Report", path: "/payitil/report", unsigned: true,
			call: func(ctx context.Context, c *Client) error { return c.Report(ctx, testReport()) },
			invalid: func(ctx context.Context, c *Client) error {
				r := testReport()
				r.UserIP = ""
				return c.Report(ctx, r)
			},
		},
		{
			name: "AuthCodeToOpenID", path: "/tools/authcodetoopenid",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.AuthCodeToOpenID(ctx, "134567890123456789")
				return err
			},
			invalid: func(ctx context.Context, c *Client) error { _, err := c.AuthCodeToOpenID(ctx, ""); return err },
			ok:      map[string]string{"openid": testOpenID},
			codes: []ErrorCode{ErrSystemError, ErrAuthCodeExpire, ErrAuthCodeError, ErrAuthCodeInvalid, ErrSignError, ErrLackParams,
				ErrXMLFormatError, ErrInvalidRequest},
		},
		{
			name: "SandboxSignKey", path: "/sandboxnew/pay/getsignkey", unsigned: true,
			call: func(ctx context.Context, c *Client) error { _, err := c.SandboxSignKey(ctx); return err },
			ok:   map[string]string{"sandbox_signkey": "sandboxsignkey0123456789abcdef01", "result_code": ""},
		},
	}
}

func testReport() *ReportRequest {
	return &ReportRequest{InterfaceURL: "https://api.mch.weixin.qq.com/pay/unifiedorder", ExecuteTime: 123 * time.Millisecond,
		ReturnCode: "SUCCESS", ResultCode: "SUCCESS", UserIP: "203.0.113.7"}
}

// answer writes a's successful answer.
func (a apiCase) answer(t testing.TB, w http.ResponseWriter, st wxpay.SignType, key string) {
	switch {
	case a.bill != "":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(a.bill))
	case a.unsigned:
		writeXML(w, unsignedXML(t, okFields(a.ok)))
	default:
		answerOK(t, w, st, key, a.ok)
	}
}

// serveOK registers handlers that answer every API of cases successfully.
func serveOK(t testing.TB, s *wxServer, cases []apiCase) {
	seen := map[string]bool{}
	for _, a := range cases {
		if seen[a.path] {
			continue
		}
		seen[a.path] = true
		s.handle(a.path, func(w http.ResponseWriter, r *http.Request) {
			st := wxpay.SignTypeMD5
			if a.path == "/pay/downloadfundflow" {
				st = wxpay.SignTypeHMACSHA256
			}
			readRequest(t, r, st, testKey)
			a.answer(t, w, st, testKey)
		})
	}
}

func TestAPISuccess(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			serveOK(t, s, []apiCase{a})
			if err := a.call(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("%d requests", n)
			}
		})
	}
}

// A protocol failure (return_code=FAIL) is a definite failure; a signature
// failure is recognisable and comes with a diagnosis that holds no key.
func TestAPIReturnFail(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			s.handle(a.path, func(w http.ResponseWriter, r *http.Request) { answerReturnFail(w, "签名错误") })
			err := a.call(context.Background(), c)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.ReturnCode != "FAIL" || e.ReturnMsg != "签名错误" || e.HTTPStatus != 200 {
				t.Errorf("error %+v", e)
			}
			if OutcomeUnknown(err) {
				t.Error("return_code=FAIL reported as unknown")
			}
			if !errors.Is(err, ErrSignError) {
				t.Error("签名错误 is not ErrSignError")
			}
			if e.Diagnosis == nil {
				t.Fatal("no diagnosis")
			}
			d := e.Diagnosis.String()
			if strings.Contains(d, testKey) || strings.Contains(err.Error(), testKey) {
				t.Fatalf("the key leaks:\n%s\n%s", d, err)
			}
			if !strings.Contains(d, "signed string: ") || !strings.Contains(d, "mch_id=1225312702") {
				t.Errorf("diagnosis lacks the signed string:\n%s", d)
			}

			// Another protocol failure: not a signature one, no diagnosis.
			s.reset()
			s.handle(a.path, func(w http.ResponseWriter, r *http.Request) { answerReturnFail(w, "参数格式校验错误") })
			err = a.call(context.Background(), c)
			if !errors.As(err, &e) || e.ReturnCode != "FAIL" || OutcomeUnknown(err) || errors.Is(err, ErrSignError) || e.Diagnosis != nil {
				t.Errorf("参数格式校验错误: %v", err)
			}
		})
	}
}

// Every err_code listed for an API maps to its sentinel, and only
// SYSTEMERROR, BANKERROR and USERPAYING leave the outcome unknown.
func TestAPIErrorCodes(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		if len(a.codes) == 0 {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			for _, code := range a.codes {
				t.Run(string(code), func(t *testing.T) {
					c, s := setup(t)
					s.handle(a.path, func(w http.ResponseWriter, r *http.Request) {
						answerCode(t, w, wxpay.SignTypeMD5, testKey, code, nil)
					})
					err := a.call(context.Background(), c)
					if !errors.Is(err, code) {
						t.Fatalf("error %v is not %s", err, code)
					}
					var e *Error
					if !errors.As(err, &e) || e.Code != code || e.Message != "描述 "+string(code) || e.ReturnCode != "SUCCESS" {
						t.Errorf("error %+v", e)
					}
					if got, want := OutcomeUnknown(err), unknownCodes[code]; got != want {
						t.Errorf("OutcomeUnknown = %v, want %v", got, want)
					}
					if !strings.Contains(err.Error(), string(code)) {
						t.Errorf("message %q lacks the code", err)
					}
					if (code == ErrSignError) != (e.Diagnosis != nil) {
						t.Errorf("diagnosis %v for %s", e.Diagnosis, code)
					}
					if e.Diagnosis != nil && strings.Contains(e.Diagnosis.String(), testKey) {
						t.Error("the key is in the diagnosis")
					}
				})
			}
		})
	}
}

// An answer that does not verify may follow an executed call: it is
// ErrResponseSignature and its outcome is unknown.
func TestAPIResponseSignature(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		if a.unsigned || a.bill != "" {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name string
				body func(t *testing.T) []byte
			}{
				{"another key", func(t *testing.T) []byte { return signedXML(t, wxpay.SignTypeMD5, otherKey, okFields(a.ok)) }},
				{"missing", func(t *testing.T) []byte { return unsignedXML(t, okFields(a.ok)) }},
				{"lower case", func(t *testing.T) []byte {
					m := okFields(a.ok)
					m["sign"] = strings.ToLower(refSign(wxpay.SignTypeMD5, testKey, m))
					return unsignedXML(t, m)
				}},
				{"HMAC-SHA256 to an MD5 client", func(t *testing.T) []byte {
					return signedXML(t, wxpay.SignTypeHMACSHA256, testKey, okFields(a.ok))
				}},
				{"a field changed after signing", func(t *testing.T) []byte {
					m := okFields(a.ok)
					m["sign"] = refSign(wxpay.SignTypeMD5, testKey, m)
					m["nonce_str"] = "changed"
					return unsignedXML(t, m)
				}},
				{"a field added after signing", func(t *testing.T) []byte {
					m := okFields(a.ok)
					m["sign"] = refSign(wxpay.SignTypeMD5, testKey, m)
					m["extra"] = "x"
					return unsignedXML(t, m)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c, s := setup(t)
					s.handle(a.path, func(w http.ResponseWriter, r *http.Request) { writeXML(w, tc.body(t)) })
					err := a.call(context.Background(), c)
					wantIs(t, err, ErrResponseSignature, ErrOutcomeUnknown)
					if strings.Contains(err.Error(), testKey) {
						t.Fatal("the key is in the error")
					}
					var e *Error
					if errors.As(err, &e) && e.Diagnosis != nil && strings.Contains(e.Diagnosis.String(), testKey) {
						t.Fatal("the key is in the diagnosis")
					}
				})
			}
		})
	}
}

// Answers that cannot be read, and transport failures after the request may
// have arrived, leave the outcome unknown; a 4xx does not.
func TestAPITransportFailures(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			full := func(t testing.TB) []byte {
				if a.unsigned {
					return unsignedXML(t, okFields(a.ok))
				}
				return signedXML(t, wxpay.SignTypeMD5, testKey, okFields(a.ok))
			}
			tests := []struct {
				name    string
				handler http.HandlerFunc
				unknown bool
				xmlErr  bool // an *XMLError is in the chain
			}{
				{"cut XML", func(w http.ResponseWriter, r *http.Request) {
					b := full(t)
					writeXML(w, b[:len(b)/2])
				}, true, true},
				{"connection drops mid-answer", func(w http.ResponseWriter, r *http.Request) {
					b := full(t)
					answerShort(t, w, b[:len(b)/2])
				}, true, false},
				{"HTML", func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
				}, true, false},
				{"no return_code", func(w http.ResponseWriter, r *http.Request) {
					writeXML(w, []byte("<xml><foo>1</foo></xml>"))
				}, true, false},
				{"HTTP 500", func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "internal error", http.StatusInternalServerError)
				}, true, false},
				{"HTTP 503", func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "unavailable", http.StatusServiceUnavailable)
				}, true, false},
				{"HTTP 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, false, false},
				{"HTTP 403", func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "forbidden", http.StatusForbidden)
				}, false, false},
			}
			if a.bill != "" {
				// A bill that is not XML goes to the bill parser; an HTML
				// page or a "<xml>" without return_code is not unknown there.
				tests = append(tests[:2:2], tests[4:]...)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c, s := setup(t)
					s.handle(a.path, tt.handler)
					err := a.call(context.Background(), c)
					if err == nil {
						t.Fatal("no error")
					}
					if got := OutcomeUnknown(err); got != tt.unknown {
						t.Errorf("OutcomeUnknown(%v) = %v, want %v", err, got, tt.unknown)
					}
					var xe *XMLError
					if tt.xmlErr && !errors.As(err, &xe) {
						t.Errorf("error %v has no *XMLError", err)
					}
					var e *Error
					if !errors.As(err, &e) || e.API == "" {
						t.Errorf("error %v (%T) is not an *Error naming the API", err, err)
					}
				})
			}
		})
	}
}

// The context's deadline wins over a slow server, and the outcome is then
// unknown: the request was sent.
func TestAPIDeadline(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			s.handle(a.path, func(w http.ResponseWriter, r *http.Request) { hang(r) })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := a.call(ctx, c)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %v", d)
			}
			wantIs(t, err, context.DeadlineExceeded)
			switch {
			case s.hits.Load() > 0 && !OutcomeUnknown(err):
				t.Errorf("the server got the request, yet the outcome is known: %v", err)
			case s.hits.Load() == 0:
				t.Logf("the deadline passed before the request arrived (a loaded machine): %v", err)
			}
		})
	}
}

// Invalid arguments are refused before anything is sent.
func TestAPIInvalidArgument(t *testing.T) {
	t.Parallel()
	for _, a := range apiCases() {
		if a.invalid == nil {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			serveOK(t, s, []apiCase{a})
			err := a.invalid(context.Background(), c)
			wantIs(t, err, ErrInvalidArgument)
			if OutcomeUnknown(err) {
				t.Error("an invalid argument is reported as unknown")
			}
			if n := s.hits.Load(); n != 0 {
				t.Errorf("the server saw %d requests", n)
			}
		})
	}
}

// A cancelled context sends nothing that could be mistaken for a result.
func TestAPICancelledContext(t *testing.T) {
	c, s := setup(t)
	serveOK(t, s, apiCases())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.OrderQuery(ctx, &OrderQueryRequest{OutTradeNo: "T2026112900001"})
	wantIs(t, err, context.Canceled)
}

// WithTimeout bounds calls whose context has no deadline.
func TestWithTimeout(t *testing.T) {
	t.Parallel()
	c, s := setup(t, WithTimeout(300*time.Millisecond))
	s.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) { hang(r) })
	start := time.Now()
	_, err := c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "T2026112900001"})
	wantIs(t, err, context.DeadlineExceeded)
	if s.hits.Load() > 0 && !OutcomeUnknown(err) {
		t.Errorf("the server got the request, yet the outcome is known: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  Option
		want string
	}{
		{"base URL not http", WithBaseURL("ftp://api.example"), "base URL"},
		{"base URL relative", WithBaseURL("/pay"), "base URL"},
		{"backup URL", WithFailover("api2.mch.weixin.qq.com"), "backup URL"},
		{"nil http.Client", WithHTTPClient(nil), "nil http.Client"},
		{"zero timeout", WithTimeout(0), "timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(testConfig(), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// NewClient refuses a bad configuration with a message that names each
// problem, and never the key.
func TestNewClientConfigErrors(t *testing.T) {
	const canary = "CANARYk3y-0123456789abcdefghijk" // 31 characters
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"key of 31 characters", func(c *Config) { c.APIKey = canary }, []string{"APIKey has 31 characters", "exactly 32"}},
		{"key of 33 characters", func(c *Config) { c.APIKey = canary + "XY" }, []string{"APIKey has 33 characters"}},
		{"no key", func(c *Config) { c.APIKey = "" }, []string{"APIKey has 0 characters"}},
		{"no app id", func(c *Config) { c.AppID = "" }, []string{"AppID is empty"}},
		{"no mch id", func(c *Config) { c.MchID = "" }, []string{"MchID is empty"}},
		{"key is the AppSecret", func(c *Config) { c.AppSecret = c.APIKey }, []string{"AppSecret", "API密钥"}},
		{"bad sign type", func(c *Config) { c.SignType = "SHA1" }, []string{`SignType "SHA1"`, "MD5 nor HMAC-SHA256"}},
		{"lower-case sign type", func(c *Config) { c.SignType = "md5" }, []string{`SignType "md5"`}},
		{"cert without key", func(c *Config) { c.CertFile = certFile }, []string{"CertFile and KeyFile go together"}},
		{"PEM cert without key", func(c *Config) { c.CertPEM = []byte("x") }, []string{"CertPEM and KeyPEM go together"}},
		{"notify URL with a query", func(c *Config) { c.NotifyURL = "https://shop.example/notify?a=1" }, []string{"query string"}},
		{"notify URL relative", func(c *Config) { c.NotifyURL = "/notify" }, []string{"not an absolute http(s) URL"}},
		{"notify URL too long", func(c *Config) { c.NotifyURL = "https://shop.example/" + strings.Repeat("n", 250) }, []string{"at most 256"}},
		{"unreadable cert file", func(c *Config) { c.CertFile, c.KeyFile = "testdata/certs/missing.pem", keyFile }, []string{"reading the client certificate", "missing.pem"}},
		{"unreadable key file", func(c *Config) { c.CertFile, c.KeyFile = certFile, "testdata/certs/missing.key" }, []string{"reading the client key"}},
		{"key does not match the cert", func(c *Config) { c.CertFile, c.KeyFile = certFile, serverKeyFile }, []string{"client certificate"}},
		{"garbage PEM", func(c *Config) { c.CertPEM, c.KeyPEM = []byte("not pem"), "not pem" }, []string{"client certificate"}},
		{"unreadable P12 file", func(c *Config) { c.P12File = "testdata/certs/missing.p12" }, []string{"reading the PKCS#12 certificate"}},
		{"wrong P12 password", func(c *Config) { c.P12File, c.P12Password = p12File, "123456" }, []string{"PKCS#12", "password"}},
		{"P12 is not PKCS#12", func(c *Config) { c.P12 = wxpay.Secret(readFile(t, certFile)) }, []string{"PKCS#12"}},
		{"two problems", func(c *Config) { c.AppID, c.MchID = "", "" }, []string{"AppID is empty", "MchID is empty"}},
	}
	loadErrors := map[string]bool{"unreadable cert file": true, "unreadable key file": true, "key does not match the cert": true,
		"garbage PEM": true, "unreadable P12 file": true, "wrong P12 password": true, "P12 is not PKCS#12": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.APIKey = canary + "Z" // 32 characters
			tt.edit(&cfg)
			c, err := NewClient(cfg)
			if err == nil {
				t.Fatalf("accepted: %v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "apiv2: ") {
				t.Errorf("%q lacks the package prefix", err)
			}
			if strings.Contains(err.Error(), canary[:16]) || strings.Contains(fmt.Sprintf("%+v", err), canary[:16]) {
				t.Fatalf("the key is in %q", err)
			}
			// Validate reads no file: the certificate's problems show only
			// when NewClient loads it.
			if loading := loadErrors[tt.name]; (cfg.Validate() == nil) != loading {
				t.Errorf("Validate: %v", cfg.Validate())
			}
		})
	}
}

// The sign type defaults to MD5, and the accessors return the config.
func TestNewClientDefaults(t *testing.T) {
	c, err := NewClient(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if c.SignType() != wxpay.SignTypeMD5 || c.AppID() != testAppID || c.MchID() != testMchID {
		t.Errorf("%s %s %s", c.SignType(), c.AppID(), c.MchID())
	}
	if c.base != wxpay.HostPay {
		t.Errorf("base %s", c.base)
	}
	cfg := testConfig()
	cfg.SignType = wxpay.SignTypeHMACSHA256
	if c, _ = NewClient(cfg); c.SignType() != wxpay.SignTypeHMACSHA256 {
		t.Errorf("%s", c.SignType())
	}
}

// A client is safe for concurrent use: the pooled encoders never mix two
// requests.
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	c, s := setupConfig(t, testConfig(), WithNonce(func() string { return "n" }))
	s.handle("/pay/unifiedorder", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		answerOK(t, w, wxpay.SignTypeMD5, testKey, map[string]string{"prepay_id": "prepay-" + f["out_trade_no"]})
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				r := jsapiOrder()
				r.OutTradeNo = fmt.Sprintf("T%03d%03d", g, i)
				r.Attach = strings.Repeat("a", g*100+i)
				resp, err := c.UnifiedOrder(context.Background(), r)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.PrepayID != "prepay-"+r.OutTradeNo {
					t.Errorf("answer %s for order %s", resp.PrepayID, r.OutTradeNo)
				}
			}
		})
	}
	wg.Wait()
}

// Failover (WithFailover): what may go to the backup host, and when.
func TestFailoverPrimaryDown(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: connection refused, without the race of
	// reusing the port of a closed test server.
	const down = "http://127.0.0.1:1"
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:1", time.Second); err == nil {
		conn.Close()
		t.Skip("something listens on 127.0.0.1:1")
	}

	for _, a := range apiCases() {
		if a.name == "SandboxSignKey" {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			backup := newServer(t)
			serveOK(t, backup, []apiCase{a})
			c, err := NewClient(certConfig(), WithBaseURL(down), WithFailover(backup.URL), WithNonce(fixedNonce))
			if err != nil {
				t.Fatal(err)
			}
			err = a.call(context.Background(), c)
			if a.name == "MicroPay" {
				// A payment code is single use: never a second host.
				if err == nil || backup.hits.Load() != 0 {
					t.Fatalf("micropay: %v, backup saw %d requests", err, backup.hits.Load())
				}
				if OutcomeUnknown(err) {
					t.Errorf("a refused connection sent nothing: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := backup.hits.Load(); n != 1 {
				t.Errorf("backup saw %d requests", n)
			}
		})
	}
}

// A primary that answers 5xx may have executed the call: reads go to the
// backup, writes do not (their outcome is unknown instead), micropay never.
func TestFailoverPrimary500(t *testing.T) {
	t.Parallel()
	safe := map[string]bool{"OrderQuery": true, "RefundQuery": true, "DownloadBill": true, "DownloadBillRaw": true,
		"DownloadFundFlow": true, "ShortURL": true, "Report": true, "AuthCodeToOpenID": true}
	for _, a := range apiCases() {
		if a.name == "SandboxSignKey" {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			primary, backup := newServer(t), newServer(t)
			primary.handle("/", func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "busy", http.StatusInternalServerError)
			})
			serveOK(t, backup, []apiCase{a})
			c, err := NewClient(certConfig(), WithBaseURL(primary.URL), WithFailover(backup.URL), WithNonce(fixedNonce))
			if err != nil {
				t.Fatal(err)
			}
			err = a.call(context.Background(), c)
			if primary.hits.Load() != 1 {
				t.Errorf("primary saw %d requests", primary.hits.Load())
			}
			if safe[a.name] {
				if err != nil || backup.hits.Load() != 1 {
					t.Fatalf("%v; backup saw %d requests", err, backup.hits.Load())
				}
				return
			}
			if backup.hits.Load() != 0 {
				t.Fatalf("a write went to the backup after the primary answered 500")
			}
			wantIs(t, err, ErrOutcomeUnknown)
			var e *Error
			if !errors.As(err, &e) || e.HTTPStatus != 500 {
				t.Errorf("error %v", err)
			}
		})
	}
}

// Without WithFailover nothing is retried anywhere.
func TestNoFailoverByDefault(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/orderquery", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusBadGateway)
	})
	_, err := c.OrderQuery(context.Background(), &OrderQueryRequest{OutTradeNo: "T2026112900001"})
	wantIs(t, err, ErrOutcomeUnknown)
	if s.hits.Load() != 1 {
		t.Errorf("%d requests", s.hits.Load())
	}
}

// An empty backup means WeChat's own backup host.
func TestWithFailoverDefault(t *testing.T) {
	c, err := NewClient(testConfig(), WithFailover(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.backup != wxpay.HostPayBackup {
		t.Errorf("backup %q", c.backup)
	}
}

// The error text names the API and what happened, and the error is the
// documented *Error in every case.
func TestErrorMessages(t *testing.T) {
	for _, tt := range []struct {
		err  *Error
		want string
	}{
		{&Error{API: "unifiedorder", ReturnCode: "SUCCESS", Code: ErrOrderPaid, Message: "该订单已支付"}, "apiv2: unifiedorder: ORDERPAID (该订单已支付)"},
		{&Error{API: "refund", ReturnCode: "FAIL", ReturnMsg: "签名错误"}, "apiv2: refund: return_code FAIL (签名错误)"},
		{&Error{API: "orderquery", HTTPStatus: 502, Unknown: true}, "apiv2: orderquery: HTTP 502: outcome unknown, query before deciding"},
		{&Error{API: "micropay", Code: ErrUserPaying, Unknown: true}, "apiv2: micropay: USERPAYING: outcome unknown, query before deciding"},
		{&Error{API: "closeorder", Err: context.DeadlineExceeded, Unknown: true}, "apiv2: closeorder: context deadline exceeded: outcome unknown, query before deciding"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
	if ErrOrderPaid.Error() != "apiv2: ORDERPAID" {
		t.Errorf("%q", ErrOrderPaid.Error())
	}
}
