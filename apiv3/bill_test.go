package apiv3

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

const billText = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n" +
	"`2026-11-28 10:00:00,`wxd678efh567hg6787,`1900009191,`0,`,`4200000000000000000000000001,`1217752501201407033233368018,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`1.00,`0.00,`0,`0,`0.00,`0.00,`,`,`QQ公仔,`,`0.01000,`0.60%,`1.00,`0.00,`\r\n" +
	"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n" +
	"`1,`1.00,`0.00,`0.00,`0.01000,`1.00,`0.00\r\n"

type billFake struct {
	*fakeWeChat
	file     []byte // what the file URL serves
	hash     string // the hash_value announced
	url      string // the download_url announced (default: on the fake)
	fileReqs int
}

func newBillFake(t *testing.T, gz bool) *billFake {
	b := &billFake{fakeWeChat: newFake(t)}
	plain := []byte(billText)
	sum := sha1.Sum(plain)
	b.hash = hex.EncodeToString(sum[:])
	b.file = plain
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(plain)
		zw.Close()
		b.file = buf.Bytes()
	}
	announce := func(w http.ResponseWriter, r *http.Request) {
		u := b.url
		if u == "" {
			u = b.srv.URL + "/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO"
		}
		b.reply(w, 200, `{"hash_type":"SHA1","hash_value":"`+b.hash+`","download_url":"`+u+`"}`)
	}
	b.mux.HandleFunc("GET /v3/bill/tradebill", announce)
	b.mux.HandleFunc("GET /v3/bill/fundflowbill", announce)
	b.mux.HandleFunc("GET /v3/billdownload/file", func(w http.ResponseWriter, r *http.Request) {
		b.fileReqs++
		if r.URL.Query().Get("token") == "" {
			t.Error("token lost")
		}
		w.Write(b.file) // unsigned, by design
	})
	return b
}

func TestTradeBill(t *testing.T) {
	for _, gz := range []bool{false, true} {
		b := newBillFake(t, gz)
		c := newTestClient(t, b.fakeWeChat)
		data, err := c.TradeBill(context.Background(), &TradeBillRequest{Date: time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China), Gzip: gz})
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if string(data) != billText {
			t.Errorf("gzip %v: bill differs", gz)
		}
		if b.fileReqs != 1 {
			t.Errorf("%d file requests", b.fileReqs)
		}
		// The file request was signed (the fake checks every Authorization).
		r, _ := b.lastRequest()
		if r.Header.Get("Authorization") == "" {
			t.Error("file request unsigned")
		}
	}
}

func TestBillRequestChecks(t *testing.T) {
	b := newBillFake(t, false)
	c := newTestClient(t, b.fakeWeChat)
	ctx := context.Background()
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)
	if data, err := c.FundFlowBill(ctx, &FundFlowBillRequest{Date: day, AccountType: wxpay.AccountOperation}); err != nil || string(data) != billText {
		t.Fatal(err)
	}
	if _, err := c.TradeBill(ctx, &TradeBillRequest{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no date: %v", err)
	}
	if _, err := c.TradeBill(ctx, &TradeBillRequest{Date: day, Type: "ALL_SPECIAL"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad type: %v", err)
	}
	if _, err := c.FundFlowBill(ctx, &FundFlowBillRequest{Date: day, AccountType: "ALL"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad account: %v", err)
	}
}

func TestBillQueryStrings(t *testing.T) {
	f := newFake(t)
	var got []string
	f.mux.HandleFunc("GET /v3/bill/{kind}", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		f.reply(w, 400, `{"code":"NO_STATEMENT_EXIST","message":"账单不存在"}`)
	})
	c := newTestClient(t, f)
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)
	_, err := c.TradeBill(context.Background(), &TradeBillRequest{Date: day.UTC(), Type: wxpay.BillTypeRefund, Gzip: true})
	if !errors.Is(err, ErrNoStatementExist) || OutcomeUnknown(err) {
		t.Errorf("no bill: %v", err)
	}
	c.FundFlowBill(context.Background(), &FundFlowBillRequest{Date: day, AccountType: wxpay.AccountOperation})
	want := []string{
		"/v3/bill/tradebill?bill_date=2026-11-28&bill_type=REFUND&tar_type=GZIP",
		"/v3/bill/fundflowbill?account_type=OPERATION&bill_date=2026-11-28",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// reliability.md E2, X11, S8.
func TestBillRefusals(t *testing.T) {
	ctx := context.Background()
	req := &TradeBillRequest{Date: time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)}
	cases := map[string]struct {
		mod  func(b *billFake)
		is   error
		file bool // whether the file may be fetched
	}{
		"wrong hash":           {func(b *billFake) { b.hash = strings.Repeat("0", 40) }, ErrBillHash, true},
		"truncated file":       {func(b *billFake) { b.file = b.file[:len(b.file)-10] }, ErrBillHash, true},
		"hash of the gzip":     {func(b *billFake) {}, nil, true}, // set below
		"another host":         {func(b *billFake) { b.url = "https://evil.example/v3/billdownload/file?token=x" }, ErrBillURL, false},
		"another port":         {func(b *billFake) { b.url = strings.Replace(b.srv.URL, "127.0.0.1:", "127.0.0.1:1", 1) + "/f" }, ErrBillURL, false},
		"https for http":       {func(b *billFake) { b.url = strings.Replace(b.srv.URL, "http:", "https:", 1) + "/f" }, ErrBillURL, false},
		"userinfo":             {func(b *billFake) { b.url = strings.Replace(b.srv.URL, "http://", "http://u:p@", 1) + "/f" }, ErrBillURL, false},
		"hash not hex":         {func(b *billFake) { b.hash = "zz" }, nil, false},
		"hash of another size": {func(b *billFake) { b.hash = "abcd" }, nil, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBillFake(t, false)
			tc.mod(b)
			if name == "hash of the gzip" {
				// The hash is over the decompressed bill; one over the
				// compressed bytes does not match.
				b2 := newBillFake(t, true)
				sum := sha1.Sum(b2.file)
				b.file, b.hash = b2.file, hex.EncodeToString(sum[:])
				tc.is = ErrBillHash
			}
			c := newTestClient(t, b.fakeWeChat)
			r := *req
			r.Gzip = name == "hash of the gzip"
			data, err := c.TradeBill(ctx, &r)
			if err == nil || data != nil {
				t.Fatalf("accepted %d bytes", len(data))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v, want %v", err, tc.is)
			}
			if !tc.file && b.fileReqs != 0 {
				t.Error("the file was fetched")
			}
		})
	}
	// A gzip bill that does not decompress, and one above the cap.
	b := newBillFake(t, true)
	b.file = b.file[:len(b.file)/2]
	if _, err := newTestClient(t, b.fakeWeChat).TradeBill(ctx, &TradeBillRequest{Date: req.Date, Gzip: true}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("truncated gzip: %v", err)
	}
	b = newBillFake(t, true)
	if _, err := newTestClient(t, b.fakeWeChat, WithMaxBillSize(100)).TradeBill(ctx, &TradeBillRequest{Date: req.Date, Gzip: true}); err == nil || !strings.Contains(err.Error(), "larger than 100") {
		t.Errorf("cap: %v", err)
	}
	b = newBillFake(t, false)
	if _, err := newTestClient(t, b.fakeWeChat, WithMaxBillSize(100)).TradeBill(ctx, req); err == nil || !strings.Contains(err.Error(), "larger than 100") {
		t.Errorf("cap, plain: %v", err)
	}
	// The announcement itself must verify.
	b = newBillFake(t, false)
	b.setSigner(platformKey(t), pubKeyID)
	if _, err := newTestClient(t, b.fakeWeChat).TradeBill(ctx, req); !errors.Is(err, ErrResponseSignature) || b.fileReqs != 0 {
		t.Errorf("forged announcement: %v", err)
	}
}

// The download URL may be on the backup host too.
func TestBillURLOnBackup(t *testing.T) {
	b := newBillFake(t, false)
	backup := newFake(t)
	c := newTestClient(t, backup, WithFailover(b.srv.URL))
	if err := c.checkDownloadURL(b.srv.URL + "/v3/billdownload/file?token=x"); err != nil {
		t.Error(err)
	}
	if err := c.checkDownloadURL("::"); !errors.Is(err, ErrBillURL) {
		t.Error(err)
	}
}

// A redirect is not followed: the bill (or any signed request) never goes
// to a host nobody checked (reliability.md S8).
func TestNoRedirects(t *testing.T) {
	b := newBillFake(t, false)
	evil := newFake(t)
	evil.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(billText)) })
	b.mux.HandleFunc("GET /v3/billdownload/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.srv.URL+"/file", http.StatusFound)
	})
	b.url = b.srv.URL + "/v3/billdownload/moved?token=x"
	_, err := newTestClient(t, b.fakeWeChat).TradeBill(context.Background(), &TradeBillRequest{Date: time.Date(2026, 11, 28, 0, 0, 0, 0, wxpay.China)})
	var e *Error
	if !errors.As(err, &e) || e.HTTPStatus != http.StatusFound {
		t.Errorf("%v", err)
	}
	if evil.requests.Load() != 0 {
		t.Error("the redirect was followed")
	}
}
