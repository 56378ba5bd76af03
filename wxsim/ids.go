package wxsim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay"
)

// IDKind names the kind of identifier an IDSource makes.
type IDKind string

// Identifier kinds. The formats below are what the default sources make;
// a custom IDSource may return anything unique of the documented length.
const (
	IDTransaction IDKind = "transaction_id"  // 28 digits, "4200…" + the CST date
	IDRefund      IDKind = "refund_id"       // 29 digits, "5030…" + the CST date
	IDPrepay      IDKind = "prepay_id"       // "wx" + yyyyMMddHHmmss + 20 characters (36 in all)
	IDCodeURL     IDKind = "code_url"        // the token after "weixin://wxpay/bizpayurl?pr="
	IDShortURL    IDKind = "short_url"       // the token after "weixin://wxpay/s/"
	IDLoginCode   IDKind = "login_code"      // 32 letters and digits, what wx.login returns
	IDAuthCode    IDKind = "auth_code"       // 18 digits starting with "13"
	IDOpenID      IDKind = "openid"          // "o" + 27 characters
	IDSessionKey  IDKind = "session_key"     // base64 of 16 bytes
	IDNonce       IDKind = "nonce_str"       // 32 letters and digits
	IDSandboxKey  IDKind = "sandbox_signkey" // 32 lower-case hex digits
	IDFundFlow    IDKind = "fund_flow_id"    // 28 digits, a fund-flow bill row
	IDRequest     IDKind = "rid"             // the rid in a jscode2session errmsg
)

// IDSource makes the identifiers the simulator hands out: WeChat order and
// refund numbers, prepay ids, codes, openids and nonces. NewID must return a
// value never returned before for that kind and be safe for concurrent use.
// now is the simulator's clock, for formats that embed the date.
type IDSource interface {
	NewID(kind IDKind, now time.Time) string
}

// NewRandomIDs returns the default IDSource: identifiers in WeChat's formats
// with random digits (crypto/rand), so that numbers stay unique across
// restarts of the simulator while a merchant's database keeps its rows.
func NewRandomIDs() IDSource { return randomIDs{} }

type randomIDs struct{}

const (
	digits   = "0123456789"
	alnum    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	lowerHex = "0123456789abcdef"
	openIDCh = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
)

// randomString returns n characters of alphabet (at most 64 long) read from
// crypto/rand without modulo bias.
func randomString(alphabet string, n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out)
}

func (randomIDs) NewID(kind IDKind, now time.Time) string {
	day := now.In(wxpay.China).Format("20060102")
	switch kind {
	case IDTransaction:
		return "4200" + randomString(digits, 6) + day + randomString(digits, 10)
	case IDRefund:
		return "5030" + randomString(digits, 6) + day + randomString(digits, 11)
	case IDPrepay:
		return "wx" + now.In(wxpay.China).Format("20060102150405") + randomString(lowerHex, 20)
	case IDCodeURL, IDShortURL:
		return randomString(alnum, 7)
	case IDLoginCode, IDNonce:
		return randomString(alnum, 32)
	case IDAuthCode:
		return "13" + randomString(digits, 16)
	case IDOpenID:
		return "o" + randomString(openIDCh, 27)
	case IDSessionKey:
		var b [16]byte
		_, _ = rand.Read(b[:])
		return base64.StdEncoding.EncodeToString(b[:])
	case IDSandboxKey:
		return randomString(lowerHex, 32)
	case IDFundFlow:
		return "1000" + day + randomString(digits, 16)
	case IDRequest:
		return randomString(lowerHex, 8) + "-" + randomString(lowerHex, 8) + "-" + randomString(lowerHex, 8)
	}
	return randomString(alnum, 32)
}

// SequentialIDs is an IDSource for tests: every identifier is a counter in
// WeChat's format, so that a test run produces the same numbers each time.
// The zero value is ready to use.
type SequentialIDs struct {
	mu sync.Mutex
	n  map[IDKind]int64
}

// NewSequentialIDs returns a new SequentialIDs starting at 1 for every kind.
func NewSequentialIDs() *SequentialIDs { return &SequentialIDs{} }

// NewID implements IDSource.
func (s *SequentialIDs) NewID(kind IDKind, now time.Time) string {
	s.mu.Lock()
	if s.n == nil {
		s.n = make(map[IDKind]int64)
	}
	s.n[kind]++
	n := s.n[kind]
	s.mu.Unlock()
	day := now.In(wxpay.China).Format("20060102")
	switch kind {
	case IDTransaction:
		return fmt.Sprintf("4200000000%s%010d", day, n)
	case IDRefund:
		return fmt.Sprintf("5030000000%s%011d", day, n)
	case IDPrepay:
		return fmt.Sprintf("wx%s%020d", now.In(wxpay.China).Format("20060102150405"), n)
	case IDCodeURL:
		return fmt.Sprintf("C%06d", n)
	case IDShortURL:
		return fmt.Sprintf("S%06d", n)
	case IDLoginCode:
		return fmt.Sprintf("code%028d", n)
	case IDNonce:
		return fmt.Sprintf("nonce%027d", n)
	case IDAuthCode:
		return fmt.Sprintf("13%016d", n)
	case IDOpenID:
		return fmt.Sprintf("oSIM%024d", n)
	case IDSessionKey:
		return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("sessionkey%06d", n)))
	case IDSandboxKey:
		return fmt.Sprintf("%032x", n)
	case IDFundFlow:
		return fmt.Sprintf("1000%s%016d", day, n)
	case IDRequest:
		return fmt.Sprintf("rid-%08d", n)
	}
	return strings.ToUpper(string(kind)) + fmt.Sprint(n)
}
