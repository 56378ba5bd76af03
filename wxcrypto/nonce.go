package wxcrypto

import (
	"crypto/rand"
	"io"
)

const nonceAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NonceLength is the length of the nonces NewNonce makes: nonce_str is at
// most 32 characters.
const NonceLength = 32

// NewNonce returns a 32-character random string of letters and digits from
// crypto/rand, for nonce_str and nonceStr.
func NewNonce() string {
	s, err := NonceFrom(rand.Reader, NonceLength)
	if err != nil {
		// crypto/rand.Reader does not fail on supported platforms.
		panic("wxcrypto: crypto/rand failed: " + err.Error())
	}
	return s
}

// NonceFrom returns an n-character string of letters and digits read from r,
// without modulo bias.
func NonceFrom(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", err
		}
		for _, c := range buf {
			// 62 letters: take bytes below 248 (= 4*62) to keep it uniform.
			if c < 248 && len(out) < n {
				out = append(out, nonceAlphabet[c%62])
			}
		}
	}
	return string(out), nil
}
