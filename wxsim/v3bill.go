package wxsim

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/url"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// v3BillFile is a bill waiting behind a download_url.
type v3BillFile struct {
	mchID   string
	data    []byte // as served: gzip when asked
	gzip    bool
	expires time.Time // simulator clock
}

// v3BillAnswer is the answer of the bill endpoints.
type v3BillAnswer struct {
	HashType    string `json:"hash_type"`
	HashValue   string `json:"hash_value"`
	DownloadURL string `json:"download_url"`
}

// v3BillDay parses bill_date (yyyy-MM-dd) as a day in China Standard Time.
func v3BillDay(c *v3Call) (time.Time, v3Result, bool) {
	v := c.r.URL.Query().Get("bill_date")
	if v == "" {
		return time.Time{}, v3Error("PARAM_ERROR", "输入源“/query/bill_date”映射到值字段“账单日期”必填性规则校验失败，此字段为必填项",
			&v3Detail{Field: "bill_date", Location: "query", Issue: "required"}), false
	}
	day, err := time.ParseInLocation(time.DateOnly, v, wxpay.China)
	if err != nil || day.Format(time.DateOnly) != v {
		return time.Time{}, v3Invalid("query", "bill_date", v, "must be yyyy-MM-dd", "bill_date格式错误：须为yyyy-MM-dd"), false
	}
	return day, v3Result{}, true
}

// v3BillReady answers NO_STATEMENT_EXIST before the day has ended and
// STATEMENT_CREATING until BillCreatingUntil after that.
func (s *Simulator) v3BillReady(day, now time.Time) (v3Result, bool) {
	end := day.AddDate(0, 0, 1)
	if now.Before(end) {
		return v3Error("NO_STATEMENT_EXIST", "账单文件不存在：该日账单尚未生成", nil), false
	}
	if s.cfg.BillCreatingUntil > 0 && now.Before(end.Add(s.cfg.BillCreatingUntil)) {
		return v3Error("STATEMENT_CREATING", "账单生成中，请稍后再试", nil), false
	}
	return v3Result{}, true
}

// v3TarType reads tar_type: empty or GZIP.
func v3TarType(c *v3Call) (bool, v3Result, bool) {
	switch v := c.r.URL.Query().Get("tar_type"); v {
	case "":
		return false, v3Result{}, true
	case "GZIP":
		return true, v3Result{}, true
	default:
		return false, v3Invalid("query", "tar_type", v, "must be GZIP or absent", "tar_type仅支持GZIP"), false
	}
}

// v3TradeBill serves GET /v3/bill/tradebill: the same bill as
// /pay/downloadbill (the same text from the same ledger), behind a
// download_url.
func (s *Simulator) v3TradeBill(c *v3Call) v3Result {
	day, res, ok := v3BillDay(c)
	if !ok {
		return res
	}
	bt := wxpay.BillType(c.r.URL.Query().Get("bill_type"))
	if bt == "" {
		bt = wxpay.BillTypeAll
	}
	if !bt.Valid() {
		return v3Invalid("query", "bill_type", string(bt), "must be ALL, SUCCESS, REFUND or RECHARGE_REFUND", "bill_type参数错误")
	}
	gz, res, ok := v3TarType(c)
	if !ok {
		return res
	}
	if res, ok := s.v3BillReady(day, c.now); !ok {
		return res
	}
	key := "trade/" + day.Format(layoutDay) + "/" + string(bt)
	b := c.vm.m.prod
	b.mu.Lock()
	text, cached := b.bills[key]
	if !cached {
		text = s.tradeBillLocked(b, day, bt)
		b.bills[key] = text
	}
	b.mu.Unlock()
	if text == nil {
		return v3Error("NO_STATEMENT_EXIST", "账单文件不存在", nil)
	}
	return s.v3BillURL(c, text, gz)
}

// v3FundFlowBill serves GET /v3/bill/fundflowbill: the fund-flow bill of
// /pay/downloadfundflow; only the basic account has entries.
func (s *Simulator) v3FundFlowBill(c *v3Call) v3Result {
	day, res, ok := v3BillDay(c)
	if !ok {
		return res
	}
	var at wxpay.AccountType
	switch v := c.r.URL.Query().Get("account_type"); v {
	case "", "BASIC":
		at = wxpay.AccountBasic
	case "OPERATION":
		at = wxpay.AccountOperation
	case "FEES":
		at = wxpay.AccountFees
	default:
		return v3Invalid("query", "account_type", v, "must be BASIC, OPERATION or FEES", "account_type参数错误")
	}
	gz, res, ok := v3TarType(c)
	if !ok {
		return res
	}
	if res, ok := s.v3BillReady(day, c.now); !ok {
		return res
	}
	if at != wxpay.AccountBasic {
		return v3Error("NO_STATEMENT_EXIST", "账单文件不存在", nil)
	}
	key := "fund/" + day.Format(layoutDay) + "/" + string(at)
	b := c.vm.m.prod
	b.mu.Lock()
	text, cached := b.bills[key]
	if !cached {
		text = s.fundBillLocked(b, day, c.now)
		b.bills[key] = text
	}
	b.mu.Unlock()
	if text == nil {
		return v3Error("NO_STATEMENT_EXIST", "账单文件不存在", nil)
	}
	return s.v3BillURL(c, text, gz)
}

// v3BillURL keeps the file behind a fresh token and answers its SHA-1
// (of the text, before any gzip) and download_url, which points back at
// the host the request came to.
func (s *Simulator) v3BillURL(c *v3Call, text []byte, gz bool) v3Result {
	sum := sha1.Sum(text)
	data := text
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(text)
		_ = w.Close()
		data = buf.Bytes()
	}
	ttl := s.cfg.V3.BillURLTTL
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	token := randomString(alnum, 40)
	st := &s.v3
	st.mu.Lock()
	for k, f := range st.bills {
		if !c.now.Before(f.expires) {
			delete(st.bills, k)
		}
	}
	st.bills[token] = &v3BillFile{mchID: c.mchID, data: data, gzip: gz, expires: c.now.Add(ttl)}
	st.mu.Unlock()
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: c.r.Host, Path: "/v3/billdownload/file", RawQuery: url.Values{"token": {token}}.Encode()}
	return v3OK(v3BillAnswer{HashType: "SHA1", HashValue: hex.EncodeToString(sum[:]), DownloadURL: u.String()})
}

// v3BillDownload serves GET /v3/billdownload/file?token=…: the bill bytes,
// for a signed request of the merchant the token was made for, unsigned.
func (s *Simulator) v3BillDownload(c *v3Call) v3Result {
	token := c.r.URL.Query().Get("token")
	st := &s.v3
	st.mu.Lock()
	f := st.bills[token]
	st.mu.Unlock()
	switch {
	case token == "" || f == nil:
		return v3Invalid("query", "token", token, "unknown token", "下载链接无效，请重新申请账单")
	case !c.now.Before(f.expires):
		return v3Error("INVALID_REQUEST", "下载链接已过期，请重新申请账单", nil)
	case f.mchID != c.mchID:
		return v3Error("NO_AUTH", "无权下载该账单", nil)
	}
	ct := "text/plain; charset=utf-8"
	if f.gzip {
		ct = "application/x-gzip"
	}
	return v3Result{status: http.StatusOK, body: f.data, unsigned: true, contentType: ct}
}

// v3CertJSON is one entry of GET /v3/certificates.
type v3CertJSON struct {
	SerialNo           string        `json:"serial_no"`
	EffectiveTime      string        `json:"effective_time"`
	ExpireTime         string        `json:"expire_time"`
	EncryptCertificate v3EncryptCert `json:"encrypt_certificate"`
}

type v3EncryptCert struct {
	Algorithm      string `json:"algorithm"`
	Nonce          string `json:"nonce"`
	AssociatedData string `json:"associated_data"`
	Ciphertext     string `json:"ciphertext"`
}

// v3Certificates serves GET /v3/certificates (protocol.md §13.3): every
// platform certificate, each encrypted with the APIv3 key (AAD
// "certificate"), newest first. A merchant with only a public key gets
// 404 RESOURCE_NOT_EXISTS.
func (s *Simulator) v3Certificates(c *v3Call) v3Result {
	vm := c.vm
	vm.mu.Lock()
	if err := vm.ensureLocked(); err != nil {
		vm.mu.Unlock()
		return v3Error("SYSTEM_ERROR", "", nil)
	}
	certs := append([]*v3PlatformCert(nil), vm.platform...)
	vm.mu.Unlock()
	if len(certs) == 0 {
		return v3Error("RESOURCE_NOT_EXISTS", "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥", nil)
	}
	data := make([]v3CertJSON, 0, len(certs))
	for i := len(certs) - 1; i >= 0; i-- {
		pc := certs[i]
		nonce := randomString(alnum, wxcrypto.AEADNonceSize)
		ct, err := vm.aead.Seal(nonce, "certificate", pc.certPEM)
		if err != nil {
			return v3Error("SYSTEM_ERROR", "", nil)
		}
		data = append(data, v3CertJSON{SerialNo: pc.serial, EffectiveTime: v3Time(pc.effective), ExpireTime: v3Time(pc.expire),
			EncryptCertificate: v3EncryptCert{Algorithm: wxcrypto.AEADAlgorithm, Nonce: nonce, AssociatedData: "certificate", Ciphertext: ct}})
	}
	return v3OK(struct {
		Data []v3CertJSON `json:"data"`
	}{data})
}
