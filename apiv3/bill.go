package apiv3

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay"
)

// MaxBillSize caps a bill file, as downloaded and once decompressed:
// 256 MiB (WithMaxBillSize changes it).
const MaxBillSize = 256 << 20

// DefaultBillTimeout bounds both steps of a bill download whose context has
// no deadline.
const DefaultBillTimeout = 60 * time.Second

var (
	epTradeBill    = &endpoint{name: "tradebill", method: "GET", safe: safeAlways}
	epFundFlowBill = &endpoint{name: "fundflowbill", method: "GET", safe: safeAlways}
	// The bill file answer is not signed by design (protocol.md §13.2):
	// its SHA1 is checked instead.
	epBillFile = &endpoint{name: "bill-file", method: "GET", safe: safeAlways, unsigned: true, bill: true}
)

// ErrBillHash means a downloaded bill's SHA1 is not the hash_value of the
// bill's answer: a truncated or altered file, never a shorter bill
// (reliability.md E2, X11).
var ErrBillHash = errors.New("apiv3: the bill file does not match its SHA1 hash_value")

// ErrBillURL means the download_url of a bill points at another scheme or
// host than the client's (reliability.md S8: no request, signed with the
// merchant key, goes to a host taken from an answer).
var ErrBillURL = errors.New("apiv3: bill download_url is not on the client's host")

// TradeBillRequest names a day's trade bill.
type TradeBillRequest struct {
	// Date is the bill's day: its calendar date in China Standard Time
	// (build it with time.Date(y, m, d, 0, 0, 0, 0, wxpay.China)). A bill
	// exists from about 10:00 the next day, for the last 3 months.
	Date time.Time
	Type wxpay.BillType // ALL (the default), SUCCESS, REFUND or RECHARGE_REFUND
	Gzip bool           // ask for tar_type=GZIP; the bytes returned are decompressed either way
}

// FundFlowBillRequest names a day's fund-flow bill.
type FundFlowBillRequest struct {
	Date        time.Time         // as in TradeBillRequest
	AccountType wxpay.AccountType // Basic (the default), Operation or Fees; sent upper-case as v3 wants
	Gzip        bool
}

// TradeBill downloads a day's trade bill (申请交易账单, GET
// /v3/bill/tradebill, then GET download_url; protocol.md §13.6) and returns
// the file, decompressed. The first answer is verified like every answer;
// the file is not signed by design, so its SHA1 is compared with the
// answer's hash_value, computed over the decompressed bill ("原始账单（gzip需要
// 解压缩）的摘要值", wechatpay-java QueryBillEntity; protocol.md does not say).
// The download_url must be on the client's host (ErrBillURL). No bill that
// day is ErrNoStatementExist. The file's text has the layout of the v2 bill
// (protocol.md §11): parse it with apiv2.ParseBill, which checks the rows
// against the summary and turns yuan into fen exactly (merchant/wxgateway
// and `wxpay bill` do).
func (c *Client) TradeBill(ctx context.Context, req *TradeBillRequest) ([]byte, error) {
	if req == nil || req.Date.IsZero() {
		return nil, &Error{API: epTradeBill.name, Err: invalid("Date is required")}
	}
	t := req.Type
	if t == "" {
		t = wxpay.BillTypeAll
	}
	if !t.Valid() {
		return nil, &Error{API: epTradeBill.name, Err: invalid("bill type %q is not ALL, SUCCESS, REFUND or RECHARGE_REFUND", string(t))}
	}
	q := url.Values{"bill_date": {req.Date.In(wxpay.China).Format("2006-01-02")}, "bill_type": {string(t)}}
	if req.Gzip {
		q.Set("tar_type", "GZIP")
	}
	return c.bill(ctx, epTradeBill, "/v3/bill/tradebill?"+q.Encode(), req.Gzip)
}

// FundFlowBill downloads a day's fund-flow bill (申请资金账单, GET
// /v3/bill/fundflowbill, then GET download_url; protocol.md §13.6), with
// the checks of TradeBill.
func (c *Client) FundFlowBill(ctx context.Context, req *FundFlowBillRequest) ([]byte, error) {
	if req == nil || req.Date.IsZero() {
		return nil, &Error{API: epFundFlowBill.name, Err: invalid("Date is required")}
	}
	a := req.AccountType
	if a == "" {
		a = wxpay.AccountBasic
	}
	if !a.Valid() {
		return nil, &Error{API: epFundFlowBill.name, Err: invalid("account type %q is not Basic, Operation or Fees", string(a))}
	}
	q := url.Values{"bill_date": {req.Date.In(wxpay.China).Format("2006-01-02")}, "account_type": {strings.ToUpper(string(a))}}
	if req.Gzip {
		q.Set("tar_type", "GZIP")
	}
	return c.bill(ctx, epFundFlowBill, "/v3/bill/fundflowbill?"+q.Encode(), req.Gzip)
}

func (c *Client) bill(ctx context.Context, ep *endpoint, path string, gz bool) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		d := DefaultBillTimeout
		if c.timeout > 0 {
			d = c.timeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	a, err := c.call(ctx, ep, path, nil, "")
	if err != nil {
		return nil, err
	}
	var info struct {
		HashType    string `json:"hash_type"`
		HashValue   string `json:"hash_value"`
		DownloadURL string `json:"download_url"`
	}
	fail := func(err error) error {
		return &Error{API: ep.name, HTTPStatus: a.status, RequestID: a.header.Get(HeaderRequestID), Err: err}
	}
	if err := json.Unmarshal(a.body, &info); err != nil || info.DownloadURL == "" || info.HashValue == "" {
		return nil, fail(errors.New("answer without hash_value and download_url"))
	}
	if info.HashType != "SHA1" {
		return nil, fail(fmt.Errorf("hash_type %q is not SHA1", info.HashType))
	}
	want, err := hex.DecodeString(info.HashValue)
	if err != nil || len(want) != sha1.Size {
		return nil, fail(errors.New("hash_value is not a hex SHA1"))
	}
	if err := c.checkDownloadURL(info.DownloadURL); err != nil {
		return nil, fail(err)
	}
	f, err := c.call(ctx, epBillFile, info.DownloadURL, nil, "")
	if err != nil {
		return nil, err
	}
	data := f.body
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &Error{API: epBillFile.name, HTTPStatus: f.status, Err: fmt.Errorf("gzip: %w", err)}
		}
		data, err = io.ReadAll(io.LimitReader(zr, c.maxBill+1))
		if err == nil && int64(len(data)) > c.maxBill {
			err = fmt.Errorf("decompressed bill larger than %d bytes", c.maxBill)
		}
		if err != nil {
			return nil, &Error{API: epBillFile.name, HTTPStatus: f.status, Err: fmt.Errorf("gzip: %w", err)}
		}
	}
	if sum := sha1.Sum(data); !bytes.Equal(sum[:], want) {
		return nil, &Error{API: epBillFile.name, HTTPStatus: f.status, Err: ErrBillHash}
	}
	return data, nil
}

// checkDownloadURL accepts a bill URL on the scheme and host of the base
// URL or of the backup.
func (c *Client) checkDownloadURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.User != nil {
		return ErrBillURL
	}
	for _, base := range []string{c.base, c.backup} {
		if base == "" {
			continue
		}
		b, err := url.Parse(base)
		if err == nil && strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s://%s", ErrBillURL, u.Scheme, u.Host)
}
