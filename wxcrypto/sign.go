package wxcrypto

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wxpay-go/wxpay"
)

// Field is one name=value pair of a flat v2 message.
type Field struct {
	Name  string
	Value string
}

// ErrSignType is returned for a signature type other than MD5 or HMAC-SHA256.
var ErrSignType = errors.New("wxcrypto: unsupported v2 sign type")

// SortFields sorts fields by name in ascending byte order, as the v2
// signature requires.
func SortFields(fields []Field) {
	slices.SortFunc(fields, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
}

// Sorted reports whether fields are sorted by name.
func Sorted(fields []Field) bool {
	return slices.IsSortedFunc(fields, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
}

// signed reports whether a field takes part in the signature.
func signed(f Field) bool { return f.Value != "" && f.Name != "sign" }

// appendCanonical appends "k1=v1&k2=v2&…&key=" to dst, followed by key.
func appendCanonical(dst []byte, fields []Field, key string) []byte {
	for _, f := range fields {
		if !signed(f) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, '=')
		dst = append(dst, f.Value...)
		dst = append(dst, '&')
	}
	dst = append(dst, "key="...)
	return append(dst, key...)
}

// stackSize is the canonical-string buffer kept on the stack: enough for
// any ordinary message; a longer one grows onto the heap.
const stackSize = 1024

// digest hashes the canonical string and writes the upper-case hex
// signature into out, returning its length (32 for MD5, 64 for HMAC-SHA256).
func digest(out *[64]byte, t wxpay.SignType, key string, fields []Field) (int, error) {
	var stack [stackSize + sha256.BlockSize]byte
	switch t {
	case wxpay.SignTypeMD5, "":
		sum := md5.Sum(appendCanonical(stack[:0], fields, key))
		upperHex(out[:32], sum[:])
		return 32, nil
	case wxpay.SignTypeHMACSHA256:
		buf := appendIpad(stack[:0], key)
		hmacFinish(out, key, appendCanonical(buf, fields, key))
		return 64, nil
	}
	return 0, fmt.Errorf("%w %q", ErrSignType, string(t))
}

// digestPrefix is digest for a canonical string already built up to the
// key: prefix is "k1=v1&…&" (or empty).
func digestPrefix(out *[64]byte, t wxpay.SignType, key string, prefix []byte) (int, error) {
	var stack [stackSize + sha256.BlockSize]byte
	var buf []byte
	switch t {
	case wxpay.SignTypeMD5, "":
		buf = stack[:0]
	case wxpay.SignTypeHMACSHA256:
		buf = appendIpad(stack[:0], key)
	default:
		return 0, fmt.Errorf("%w %q", ErrSignType, string(t))
	}
	buf = append(buf, prefix...)
	buf = append(buf, "key="...)
	buf = append(buf, key...)
	if t == wxpay.SignTypeHMACSHA256 {
		hmacFinish(out, key, buf)
		return 64, nil
	}
	sum := md5.Sum(buf)
	upperHex(out[:32], sum[:])
	return 32, nil
}

// hmacKey is the HMAC-SHA256 key block (RFC 2104: a key longer than the
// block is hashed first).
func hmacKey(key string) (k [sha256.BlockSize]byte) {
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256([]byte(key))
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	return k
}

// appendIpad appends K ^ ipad, the start of HMAC's inner message.
func appendIpad(dst []byte, key string) []byte {
	k := hmacKey(key)
	for _, c := range k {
		dst = append(dst, c^0x36)
	}
	return dst
}

// hmacFinish computes HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m))
// from inner = (K ^ ipad) || m, into out as upper-case hex. The whole
// computation stays on the stack.
func hmacFinish(out *[64]byte, key string, inner []byte) {
	k := hmacKey(key)
	ih := sha256.Sum256(inner)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], ih[:])
	sum := sha256.Sum256(outer[:])
	upperHex(out[:64], sum[:])
}

const hexUpper = "0123456789ABCDEF"

func upperHex(dst, src []byte) {
	for i, b := range src {
		dst[2*i] = hexUpper[b>>4]
		dst[2*i+1] = hexUpper[b&0x0f]
	}
}

// Sign returns the v2 signature of fields with the API key: the upper-case
// hex MD5 or HMAC-SHA256 of the canonical string. fields must be sorted by
// name (see SortFields); empty values and the sign field are skipped. An
// empty sign type means MD5, as on the wire.
func Sign(t wxpay.SignType, key string, fields []Field) (string, error) {
	var out [64]byte
	n, err := digest(&out, t, key, fields)
	if err != nil {
		return "", err
	}
	return string(out[:n]), nil
}

// AppendSign appends the signature of fields to dst, like Sign, without
// allocating when dst has room.
func AppendSign(dst []byte, t wxpay.SignType, key string, fields []Field) ([]byte, error) {
	var out [64]byte
	n, err := digest(&out, t, key, fields)
	if err != nil {
		return dst, err
	}
	return append(dst, out[:n]...), nil
}

// AppendSignPrefix appends to dst the signature of a canonical string that
// the caller has already built: prefix is "k1=v1&k2=v2&…&" (every signed
// field followed by '&', or empty), to which "key=<key>" is added here.
// It lets an encoder write the XML and the signed string in one pass.
func AppendSignPrefix(dst []byte, t wxpay.SignType, key string, prefix []byte) ([]byte, error) {
	var out [64]byte
	n, err := digestPrefix(&out, t, key, prefix)
	if err != nil {
		return dst, err
	}
	return append(dst, out[:n]...), nil
}

// Verify reports whether sign is the v2 signature of fields under key and
// sign type t. fields must be sorted by name. The comparison is constant
// time and case-sensitive: WeChat signs in upper-case hex, and a lower-case
// signature is not accepted.
func Verify(t wxpay.SignType, key string, fields []Field, sign string) bool {
	var out [64]byte
	n, err := digest(&out, t, key, fields)
	if err != nil || len(sign) != n {
		return false
	}
	return subtle.ConstantTimeCompare(out[:n], []byte(sign)) == 1
}

// SignMap signs a map of fields: a convenience for callers that hold their
// values in a map. Sorting is done here.
func SignMap(t wxpay.SignType, key string, m map[string]string) (string, error) {
	return Sign(t, key, FieldsFromMap(m))
}

// FieldsFromMap returns the map's entries as fields sorted by name.
func FieldsFromMap(m map[string]string) []Field {
	fields := make([]Field, 0, len(m))
	for k, v := range m {
		fields = append(fields, Field{k, v})
	}
	SortFields(fields)
	return fields
}

// Redacted stands for the API key in canonical strings shown to people.
const Redacted = "REDACTED"

// CanonicalString returns the string that the v2 signature hashes, with the
// key replaced by REDACTED, for diagnostics and logs. fields must be sorted.
func CanonicalString(fields []Field) string {
	return string(appendCanonical(nil, fields, Redacted))
}

// KeyFingerprint returns a short, non-reversible fingerprint of a key (the
// first 8 hex digits of its SHA-256) so that two people can tell whether they
// hold the same key without showing it.
func KeyFingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}
