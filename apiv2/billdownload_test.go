package apiv2

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
)

func TestDownloadBill(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/downloadbill", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"bill_date": "20261128", "bill_type": "ALL"}))
		_, _ = w.Write([]byte(testBill))
	})
	bill, err := c.DownloadBill(context.Background(), &DownloadBillRequest{Date: billDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(bill.Rows) != 1 || bill.Rows[0].OutTradeNo != "T2026112800001" || bill.Rows[0].TotalFee != 1999 || bill.Summary.Count != 1 {
		t.Errorf("%+v", bill)
	}
}

// The bill date is the calendar day in China Standard Time, whatever the
// location of the time given.
func TestDownloadBillDateInChina(t *testing.T) {
	c, s := setup(t)
	s.handle("/pay/downloadbill", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeMD5, testKey)
		checkFields(t, f, base(map[string]string{"bill_date": "20261129", "bill_type": "REFUND", "tar_type": "GZIP"}))
		_, _ = w.Write(gzipBytes(t, []byte(testBill)))
	})
	// 2026-11-28 20:00 UTC is 2026-11-29 04:00 in China.
	raw, err := c.DownloadBillRaw(context.Background(), &DownloadBillRequest{
		Date: time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC), Type: wxpay.BillTypeRefund, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, gzipBytes(t, []byte(testBill))) {
		t.Error("DownloadBillRaw changed the bytes")
	}
	if _, err := ParseBill(raw); err != nil {
		t.Errorf("the gzip bill does not parse: %v", err)
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Failures come back as XML (protocol.md §5.6): each return_msg maps to
// what the caller does next.
func TestDownloadBillFailures(t *testing.T) {
	tests := []struct {
		msg     string
		is      []error
		not     []error
		unknown bool
		diag    bool
	}{
		{msg: "No Bill Exist", is: []error{ErrNoBill}, not: []error{ErrBillCreating}},
		{msg: "NO Bill Exist", is: []error{ErrNoBill}},
		{msg: "Bill Creating", is: []error{ErrBillCreating}, not: []error{ErrNoBill}},
		{msg: "SYSTEMERROR", is: []error{ErrSystemError}, unknown: true},
		{msg: "SIGN ERROR", is: []error{ErrSignError}, diag: true},
		{msg: "invalid bill_type", not: []error{ErrNoBill, ErrSignError}},
		{msg: "data format error", not: []error{ErrNoBill, ErrSignError}},
		{msg: "missing parameter", not: []error{ErrNoBill, ErrSignError}},
		{msg: "CompressGZip Error", not: []error{ErrNoBill, ErrSignError}},
		{msg: "UnCompressGZip Error", not: []error{ErrNoBill, ErrSignError}},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			c, s := setup(t)
			body := "\n<xml><return_code>FAIL</return_code><return_msg>" + tt.msg + "</return_msg><error_code>20002</error_code></xml>"
			s.handle("/pay/downloadbill", func(w http.ResponseWriter, r *http.Request) { writeXML(w, []byte(body)) })
			s.handle("/pay/downloadfundflow", func(w http.ResponseWriter, r *http.Request) { writeXML(w, []byte(body)) })
			for _, call := range []func() error{
				func() error {
					_, err := c.DownloadBill(context.Background(), &DownloadBillRequest{Date: billDay})
					return err
				},
				func() error {
					_, err := c.DownloadFundFlow(context.Background(), &DownloadFundFlowRequest{Date: billDay})
					return err
				},
			} {
				err := call()
				var e *Error
				if !errors.As(err, &e) || e.ReturnCode != "FAIL" || e.ReturnMsg != tt.msg {
					t.Fatalf("error %v", err)
				}
				for _, target := range tt.is {
					if !errors.Is(err, target) {
						t.Errorf("%v is not %v", err, target)
					}
				}
				for _, target := range tt.not {
					if errors.Is(err, target) {
						t.Errorf("%v is %v", err, target)
					}
				}
				if OutcomeUnknown(err) != tt.unknown {
					t.Errorf("OutcomeUnknown = %v", OutcomeUnknown(err))
				}
				if (e.Diagnosis != nil) != tt.diag {
					t.Errorf("diagnosis %v", e.Diagnosis)
				}
				if e.Diagnosis != nil && strings.Contains(e.Diagnosis.String(), testKey) {
					t.Fatal("the key is in the diagnosis")
				}
			}
		})
	}
}

// A cut bill is an error, never a shorter bill; DownloadBillRaw cannot
// tell and returns the bytes.
func TestDownloadBillTruncated(t *testing.T) {
	cut := testBill[:strings.Index(testBill, "总交易单数")]
	c, s := setup(t)
	s.handle("/pay/downloadbill", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(cut)) })
	_, err := c.DownloadBill(context.Background(), &DownloadBillRequest{Date: billDay})
	wantIs(t, err, ErrBillTruncated)
	raw, err := c.DownloadBillRaw(context.Background(), &DownloadBillRequest{Date: billDay})
	if err != nil || string(raw) != cut {
		t.Errorf("%v", err)
	}
	// A cut gzip stream is caught by DownloadBill.
	c, s = setup(t)
	gz := gzipBytes(t, []byte(testBill))
	s.handle("/pay/downloadbill", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(gz[:len(gz)-10]) })
	if _, err = c.DownloadBill(context.Background(), &DownloadBillRequest{Date: billDay, Gzip: true}); err == nil {
		t.Fatal("a cut gzip bill parsed")
	}
}

// downloadfundflow is always HMAC-SHA256 (protocol.md §5.7), needs the
// certificate, and defaults to the Basic account.
func TestDownloadFundFlow(t *testing.T) {
	c, s := setup(t) // an MD5 client
	s.handle("/pay/downloadfundflow", func(w http.ResponseWriter, r *http.Request) {
		f := readRequest(t, r, wxpay.SignTypeHMACSHA256, testKey)
		checkFields(t, f, base(map[string]string{"bill_date": "20261128", "account_type": "Basic", "sign_type": "HMAC-SHA256"}))
		_, _ = w.Write([]byte(testFundFlow))
	})
	bill, err := c.DownloadFundFlow(context.Background(), &DownloadFundFlowRequest{Date: billDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(bill.Rows) != 1 || bill.Summary.Count != 1 {
		t.Errorf("%+v", bill)
	}
}

func TestDownloadInvalid(t *testing.T) {
	c, s := setup(t)
	for name, call := range map[string]func() error{
		"no date": func() error { _, err := c.DownloadBill(context.Background(), &DownloadBillRequest{}); return err },
		"bad type": func() error {
			_, err := c.DownloadBill(context.Background(), &DownloadBillRequest{Date: billDay, Type: "all"})
			return err
		},
		"fund flow no date": func() error {
			_, err := c.DownloadFundFlow(context.Background(), &DownloadFundFlowRequest{})
			return err
		},
		"fund flow bad account": func() error {
			_, err := c.DownloadFundFlow(context.Background(), &DownloadFundFlowRequest{Date: billDay, AccountType: "basic"})
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if s.hits.Load() != 0 {
		t.Errorf("%d requests", s.hits.Load())
	}
}
