package wxcrypto

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrOAEP means an RSA-OAEP ciphertext does not decrypt (wrong key, altered
// ciphertext, or not base64).
var ErrOAEP = errors.New("wxcrypto: RSA-OAEP ciphertext does not decrypt")

// EncryptOAEP encrypts a sensitive request field (a name, an id number, a
// bank account) for WeChat Pay (protocol.md §13.3): RSAES-OAEP with the
// platform certificate's or the WeChat Pay public key's RSA key, base64. The
// request must then carry the header Wechatpay-Serial naming that key (the
// certificate serial or the PUB_KEY_ID_… id).
//
// The OAEP parameters are SHA-1 with MGF1-SHA-1 and an empty label, as in
// the official SDKs (wechatpay-go utils.EncryptOAEPWithPublicKey,
// wechatpay-java); protocol.md §13.3 and §16 mark them UNCONFIRMED against
// the official pages. OAEP is randomised: two calls give different
// ciphertexts.
func EncryptOAEP(pub *rsa.PublicKey, plaintext string) (string, error) {
	if pub == nil {
		return "", ErrNilKey
	}
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, []byte(plaintext), nil)
	if err != nil {
		// Too long for the key: the message says so, without the text.
		return "", fmt.Errorf("wxcrypto: RSA-OAEP: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// DecryptOAEP is the inverse of EncryptOAEP with the matching private key
// (SHA-1, MGF1-SHA-1, empty label): WeChat Pay uses it on the sensitive
// fields a merchant sends, the simulator too, and a merchant on the
// sensitive fields WeChat Pay returns encrypted with the merchant's
// certificate. Any failure is ErrOAEP.
func DecryptOAEP(key *rsa.PrivateKey, ciphertextB64 string) (string, error) {
	if key == nil {
		return "", ErrNilKey
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(ciphertextB64)
	if err != nil {
		return "", ErrOAEP
	}
	pt, err := rsa.DecryptOAEP(sha1.New(), nil, key, ct, nil)
	if err != nil {
		return "", ErrOAEP
	}
	return string(pt), nil
}
