package wxcrypto

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Errors of the APIv3 RSA signatures (protocol.md §13.1, §13.2, §13.5).
// None of them carries key material, a message or a signature.
var (
	// ErrV3Signature means a signature does not verify under the key.
	ErrV3Signature = errors.New("wxcrypto: v3 signature does not verify")
	// ErrV3SignatureEncoding means a signature is not standard, padded
	// base64 (whitespace, the URL-safe alphabet and missing padding are all
	// refused: one rule, no normalisation; reliability.md C3).
	ErrV3SignatureEncoding = errors.New("wxcrypto: v3 signature is not standard base64")
	// ErrNilKey means a nil key was passed.
	ErrNilKey = errors.New("wxcrypto: nil RSA key")
)

// AuthSchemeV3 is the scheme of the APIv3 Authorization header and the value
// of the Wechatpay-Signature-Type header (protocol.md §13.1).
const AuthSchemeV3 = "WECHATPAY2-SHA256-RSA2048"

// maxSigLen bounds a decoded signature: 512 bytes is a 4096-bit key.
const maxSigLen = 512

// appendV3Request appends the request message of protocol.md §13.1:
// METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n.
func appendV3Request(dst []byte, method, canonicalURL string, timestamp int64, nonce string, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = append(dst, canonicalURL...)
	dst = append(dst, '\n')
	dst = strconv.AppendInt(dst, timestamp, 10)
	dst = append(dst, '\n')
	dst = append(dst, nonce...)
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, '\n')
}

// appendV3Response appends the response and notify message of protocol.md
// §13.2: TIMESTAMP\nNONCE\nBODY\n.
func appendV3Response(dst []byte, timestamp, nonce string, body []byte) []byte {
	dst = append(dst, timestamp...)
	dst = append(dst, '\n')
	dst = append(dst, nonce...)
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, '\n')
}

// V3RequestMessage returns the string that SignV3 signs, for diagnostics
// and tests. It holds the body: do not log it.
func V3RequestMessage(method, canonicalURL string, timestamp int64, nonce string, body []byte) string {
	return string(appendV3Request(nil, method, canonicalURL, timestamp, nonce, body))
}

// V3ResponseMessage returns the string that VerifyV3 checks.
func V3ResponseMessage(timestamp, nonce string, body []byte) string {
	return string(appendV3Response(nil, timestamp, nonce, body))
}

// bufPool holds the buffers v3 messages are built in (a body can be large).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// digestV3 hashes the message that build writes, in a pooled buffer.
func digestV3(build func([]byte) []byte) [sha256.Size]byte {
	bp := bufPool.Get().(*[]byte)
	buf := build((*bp)[:0])
	sum := sha256.Sum256(buf)
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
	}
	bufPool.Put(bp)
	return sum
}

// signDigest returns base64(RSASSA-PKCS1-v1_5(SHA-256)) of a digest.
func signDigest(key *rsa.PrivateKey, sum *[sha256.Size]byte) (string, error) {
	if key == nil {
		return "", ErrNilKey
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("wxcrypto: RSA signature: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignV3 returns the signature of an APIv3 request (protocol.md §13.1):
// base64 of RSASSA-PKCS1-v1_5 with SHA-256, by the merchant API private key,
// over "METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n". canonicalURL is the
// path and query as sent, without scheme and host; body is the exact bytes
// sent (empty for GET). It goes into the signature="…" pair of the
// Authorization header (see AuthorizationV3).
func SignV3(key *rsa.PrivateKey, method, canonicalURL string, timestamp int64, nonce string, body []byte) (string, error) {
	sum := digestV3(func(b []byte) []byte { return appendV3Request(b, method, canonicalURL, timestamp, nonce, body) })
	return signDigest(key, &sum)
}

// VerifyV3Request checks the signature of an APIv3 request, as WeChat Pay
// does with the merchant's certificate; the simulator uses it.
func VerifyV3Request(pub *rsa.PublicKey, method, canonicalURL string, timestamp int64, nonce string, body []byte, signature string) error {
	sum := digestV3(func(b []byte) []byte { return appendV3Request(b, method, canonicalURL, timestamp, nonce, body) })
	return verifyDigest(pub, &sum, signature)
}

// SignV3Response signs an APIv3 response or notify body the way WeChat Pay
// does (protocol.md §13.2): base64 SHA256withRSA over
// "TIMESTAMP\nNONCE\nBODY\n". The simulator uses it with its platform key;
// tests use it to forge answers.
func SignV3Response(key *rsa.PrivateKey, timestamp, nonce string, body []byte) (string, error) {
	sum := digestV3(func(b []byte) []byte { return appendV3Response(b, timestamp, nonce, body) })
	return signDigest(key, &sum)
}

// VerifyV3 checks the Wechatpay-Signature of an APIv3 response or notify
// (protocol.md §13.2): signature must be standard base64 of an RSASSA-
// PKCS1-v1_5 SHA-256 signature by pub over "TIMESTAMP\nNONCE\nBODY\n", where
// timestamp and nonce are the Wechatpay-Timestamp and Wechatpay-Nonce
// headers as received and body is the raw body as received (never a
// re-serialised one). It checks the signature only: the caller checks that
// the headers are present, that the timestamp is within its window, and
// picks pub by Wechatpay-Serial. The error is ErrV3SignatureEncoding or
// ErrV3Signature.
func VerifyV3(pub *rsa.PublicKey, timestamp, nonce string, body []byte, signature string) error {
	sum := digestV3(func(b []byte) []byte { return appendV3Response(b, timestamp, nonce, body) })
	return verifyDigest(pub, &sum, signature)
}

// verifyDigest decodes signature strictly and verifies it over sum.
func verifyDigest(pub *rsa.PublicKey, sum *[sha256.Size]byte, signature string) error {
	if pub == nil {
		return ErrNilKey
	}
	sig, err := decodeSignature(signature)
	if err != nil {
		return err
	}
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return ErrV3Signature
	}
	return nil
}

// decodeSignature decodes standard, padded base64 and nothing else: Go's
// decoder skips \r and \n, which a signature must not contain.
func decodeSignature(s string) ([]byte, error) {
	if len(s) == 0 || len(s)%4 != 0 || len(s) > base64.StdEncoding.EncodedLen(maxSigLen) {
		return nil, ErrV3SignatureEncoding
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, ErrV3SignatureEncoding
		}
	}
	sig := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Strict().Decode(sig, []byte(s))
	if err != nil {
		return nil, ErrV3SignatureEncoding
	}
	return sig[:n], nil
}

// MiniProgramPaySignV3 returns the paySign of the APIv3 mini-program (and
// JSAPI) pay parameters (protocol.md §13.5): base64 SHA256withRSA by the
// merchant API private key over "appId\ntimeStamp\nnonceStr\nprepay_id=<id>\n".
// The parameters then carry signType "RSA" and package "prepay_id=<id>".
func MiniProgramPaySignV3(key *rsa.PrivateKey, appID, timeStamp, nonceStr, prepayID string) (string, error) {
	sum := digestV3(func(b []byte) []byte { return appendPaySignV3(b, appID, timeStamp, nonceStr, prepayID) })
	return signDigest(key, &sum)
}

// VerifyMiniProgramPaySignV3 checks a paySign the way the WeChat client
// does; the simulator and tests use it.
func VerifyMiniProgramPaySignV3(pub *rsa.PublicKey, appID, timeStamp, nonceStr, prepayID, paySign string) error {
	sum := digestV3(func(b []byte) []byte { return appendPaySignV3(b, appID, timeStamp, nonceStr, prepayID) })
	return verifyDigest(pub, &sum, paySign)
}

func appendPaySignV3(dst []byte, appID, timeStamp, nonceStr, prepayID string) []byte {
	dst = append(dst, appID...)
	dst = append(dst, '\n')
	dst = append(dst, timeStamp...)
	dst = append(dst, '\n')
	dst = append(dst, nonceStr...)
	dst = append(dst, '\n')
	dst = append(dst, "prepay_id="...)
	dst = append(dst, prepayID...)
	return append(dst, '\n')
}

// AuthorizationV3 is the content of an APIv3 Authorization header
// (protocol.md §13.1).
type AuthorizationV3 struct {
	MchID     string // mchid: the merchant id
	SerialNo  string // serial_no: the merchant API certificate serial, hex upper-case
	Nonce     string // nonce_str
	Timestamp int64  // timestamp: Unix seconds
	Signature string // signature: SignV3's result
}

// String returns the header value: the scheme, then the pairs in the
// official SDK's order (mchid, nonce_str, timestamp, serial_no, signature).
func (a *AuthorizationV3) String() string {
	var b strings.Builder
	b.Grow(len(AuthSchemeV3) + 80 + len(a.MchID) + len(a.Nonce) + len(a.SerialNo) + len(a.Signature))
	b.WriteString(AuthSchemeV3)
	b.WriteString(` mchid="`)
	b.WriteString(a.MchID)
	b.WriteString(`",nonce_str="`)
	b.WriteString(a.Nonce)
	b.WriteString(`",timestamp="`)
	var ts [20]byte
	b.Write(strconv.AppendInt(ts[:0], a.Timestamp, 10))
	b.WriteString(`",serial_no="`)
	b.WriteString(a.SerialNo)
	b.WriteString(`",signature="`)
	b.WriteString(a.Signature)
	b.WriteByte('"')
	return b.String()
}

// ErrAuthorizationV3 means an Authorization header is not a well-formed
// WECHATPAY2-SHA256-RSA2048 header.
var ErrAuthorizationV3 = errors.New("wxcrypto: malformed WECHATPAY2-SHA256-RSA2048 Authorization header")

// ParseAuthorizationV3 parses an APIv3 Authorization header: the scheme,
// then comma-separated key="value" pairs in any order. All five pairs are
// required, each once; unknown pairs are refused. The simulator uses it.
func ParseAuthorizationV3(header string) (*AuthorizationV3, error) {
	rest, ok := strings.CutPrefix(header, AuthSchemeV3+" ")
	if !ok {
		return nil, fmt.Errorf("%w: scheme is not %s", ErrAuthorizationV3, AuthSchemeV3)
	}
	var a AuthorizationV3
	var seen [5]bool
	var ts string
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, fmt.Errorf("%w: pair %q is not key=\"value\"", ErrAuthorizationV3, k)
		}
		v = v[1 : len(v)-1]
		var i int
		switch k {
		case "mchid":
			i, a.MchID = 0, v
		case "nonce_str":
			i, a.Nonce = 1, v
		case "timestamp":
			i, ts = 2, v
		case "serial_no":
			i, a.SerialNo = 3, v
		case "signature":
			i, a.Signature = 4, v
		default:
			return nil, fmt.Errorf("%w: unknown pair %q", ErrAuthorizationV3, k)
		}
		if seen[i] {
			return nil, fmt.Errorf("%w: pair %q repeated", ErrAuthorizationV3, k)
		}
		seen[i] = true
	}
	for i, name := range []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"} {
		if !seen[i] {
			return nil, fmt.Errorf("%w: %s missing", ErrAuthorizationV3, name)
		}
	}
	t, ok := ParseV3Timestamp(ts)
	if !ok {
		return nil, fmt.Errorf("%w: timestamp is not Unix seconds", ErrAuthorizationV3)
	}
	a.Timestamp = t
	return &a, nil
}

// ParseV3Timestamp parses a Wechatpay-Timestamp or an Authorization
// timestamp: 1 to 10 ASCII digits of Unix seconds, nothing else (no sign,
// no space, no exponent, no milliseconds; reliability.md C2).
func ParseV3Timestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
