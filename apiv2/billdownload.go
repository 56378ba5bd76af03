package apiv2

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
)

var (
	epDownloadBill     = &endpoint{name: "downloadbill", path: "/pay/downloadbill", safe: safeAlways}
	epDownloadFundFlow = &endpoint{name: "downloadfundflow", path: "/pay/downloadfundflow", cert: true, safe: safeAlways,
		signType: wxpay.SignTypeHMACSHA256}
)

// DownloadBillRequest names a day's trade bill.
type DownloadBillRequest struct {
	// Date is the bill's day: its calendar date in China Standard Time
	// (build it with time.Date(y, m, d, 0, 0, 0, 0, wxpay.China)). Bills
	// exist from about 09:00 the next day, for the last 3 months.
	Date time.Time
	Type wxpay.BillType // default ALL
	Gzip bool           // ask for tar_type=GZIP
}

// DownloadFundFlowRequest names a day's fund-flow bill.
type DownloadFundFlowRequest struct {
	Date        time.Time         // as in DownloadBillRequest
	AccountType wxpay.AccountType // default Basic
	Gzip        bool
}

// DownloadBill downloads and parses a day's trade bill (下载交易账单, POST
// /pay/downloadbill). ErrNoBill means there was no trade that day;
// ErrBillCreating means it is too early. A truncated or inconsistent bill is
// an error, never a shorter bill.
func (c *Client) DownloadBill(ctx context.Context, req *DownloadBillRequest) (*Bill, error) {
	data, err := c.DownloadBillRaw(ctx, req)
	if err != nil {
		return nil, err
	}
	return ParseBill(data)
}

// DownloadBillRaw downloads a day's trade bill and returns its bytes as
// WeChat sent them (gzip when req.Gzip).
func (c *Client) DownloadBillRaw(ctx context.Context, req *DownloadBillRequest) ([]byte, error) {
	t := req.Type
	if t == "" {
		t = wxpay.BillTypeAll
	}
	return c.download(ctx, epDownloadBill, func(e *encoder) {
		e.require(!req.Date.IsZero(), "downloadbill: Date is required")
		if !(t.Valid()) {
			e.fail(invalid("downloadbill: bill type %q is not ALL, SUCCESS, REFUND or RECHARGE_REFUND", string(t)))
		}
		e.str("bill_date", req.Date.In(wxpay.China).Format("20060102"))
		e.str("bill_type", string(t))
		if req.Gzip {
			e.str("tar_type", "GZIP")
		}
	})
}

// DownloadFundFlow downloads and parses a day's fund-flow bill (下载资金账单,
// POST /pay/downloadfundflow, with the client certificate; always signed
// with HMAC-SHA256, the only type WeChat accepts here).
func (c *Client) DownloadFundFlow(ctx context.Context, req *DownloadFundFlowRequest) (*FundFlowBill, error) {
	a := req.AccountType
	if a == "" {
		a = wxpay.AccountBasic
	}
	data, err := c.download(ctx, epDownloadFundFlow, func(e *encoder) {
		e.require(!req.Date.IsZero(), "downloadfundflow: Date is required")
		if !(a.Valid()) {
			e.fail(invalid("downloadfundflow: account type %q is not Basic, Operation or Fees", string(a)))
		}
		e.str("bill_date", req.Date.In(wxpay.China).Format("20060102"))
		e.str("account_type", string(a))
		if req.Gzip {
			e.str("tar_type", "GZIP")
		}
	})
	if err != nil {
		return nil, err
	}
	return ParseFundFlow(data)
}

// download sends a bill request. A bill is plain text or gzip; a failure is
// an XML message, told apart by its "<xml>" start (protocol.md §5.6).
func (c *Client) download(ctx context.Context, ep *endpoint, build func(*encoder)) ([]byte, error) {
	body, st, key, e, err := c.prepare(ctx, ep, build)
	if err != nil {
		return nil, err
	}
	defer putEncoder(e)
	status, data, err := c.send(ctx, ep, body, MaxBillSize)
	if err != nil {
		return nil, err
	}
	if status != 200 {
		return nil, &Error{API: ep.name, HTTPStatus: status, Unknown: status >= 500}
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("<xml>")) {
		return data, nil
	}
	fields, err := ParseMessage(data)
	if err != nil {
		return nil, &Error{API: ep.name, HTTPStatus: status, Unknown: true, Err: err}
	}
	rc, msg := lookup(fields, "return_code"), lookup(fields, "return_msg")
	out := &Error{API: ep.name, HTTPStatus: status, ReturnCode: rc, ReturnMsg: msg, Code: ErrorCode(lookup(fields, "err_code"))}
	switch m := strings.ToLower(msg); {
	case strings.Contains(m, "no bill exist"):
		out.Err = ErrNoBill
	case strings.Contains(m, "bill creating"):
		out.Err = ErrBillCreating
	case strings.Contains(m, "systemerror"):
		out.Code = ErrSystemError
		out.Unknown = true
	case signMsg(msg):
		out.Diagnosis = c.diagnose(e.fields(), "", st, key)
	}
	return nil, out
}
