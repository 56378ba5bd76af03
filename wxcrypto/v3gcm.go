package wxcrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/wxpay-go/wxpay"
)

// AEADAlgorithm is the algorithm field of every APIv3 encrypted resource
// (protocol.md §13.4).
const AEADAlgorithm = "AEAD_AES_256_GCM"

// Sizes of AEAD_AES_256_GCM as WeChat Pay uses it (protocol.md §13.4).
const (
	APIv3KeySize   = 32 // the APIv3 key: 32 ASCII bytes, used as they are
	AEADNonceSize  = 12 // the nonce field: 12 characters, used as the IV
	AEADTagSize    = 16 // the GCM tag, the last 16 bytes of the ciphertext
	maxAEADPayload = 1 << 20
)

// Errors of the AEAD_AES_256_GCM functions. Callers branch on them with
// errors.Is; none holds key material or plaintext.
var (
	// ErrAPIv3Key means the APIv3 key is not exactly 32 bytes.
	ErrAPIv3Key = errors.New("wxcrypto: the APIv3 key must be exactly 32 bytes")
	// ErrAEADNonce means the nonce is not exactly 12 bytes. It is checked
	// before the cipher is used: cipher.AEAD.Open panics on another length
	// (reliability.md F2).
	ErrAEADNonce = errors.New("wxcrypto: the AEAD nonce must be exactly 12 bytes")
	// ErrAEADBase64 means the ciphertext is not standard base64.
	ErrAEADBase64 = errors.New("wxcrypto: the AEAD ciphertext is not standard base64")
	// ErrAEADShort means the ciphertext is shorter than the 16-byte tag, or
	// longer than 1 MiB.
	ErrAEADShort = errors.New("wxcrypto: the AEAD ciphertext is shorter than its 16-byte tag")
	// ErrAEADAuth means authentication failed: a wrong APIv3 key, a wrong
	// associated_data or nonce, or a ciphertext or tag that was changed.
	ErrAEADAuth = errors.New("wxcrypto: AEAD authentication failed (wrong APIv3 key, nonce or associated_data, or altered ciphertext)")
)

// AEAD is AEAD_AES_256_GCM keyed with an APIv3 key, built once and reused:
// it saves the key schedule on every notify. It is safe for concurrent use.
type AEAD struct {
	gcm cipher.AEAD
}

// NewAEAD checks the APIv3 key (exactly 32 bytes) and prepares the cipher.
func NewAEAD(apiV3Key wxpay.Secret) (*AEAD, error) {
	k := apiV3Key.Reveal()
	if len(k) != APIv3KeySize {
		return nil, fmt.Errorf("%w, got %d", ErrAPIv3Key, len(k))
	}
	block, err := aes.NewCipher([]byte(k))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AEAD{gcm: gcm}, nil
}

// Format prints the AEAD without its key, for every verb.
func (a *AEAD) Format(f fmt.State, verb rune) { fmt.Fprint(f, "wxcrypto.AEAD{REDACTED}") }

// Open decrypts a resource (protocol.md §13.4): ciphertextB64 is the
// base64 of ciphertext‖tag, nonce the 12-byte nonce field, associatedData
// the associated_data field (may be empty). Every bad input is an error,
// never a panic: the nonce length is checked before the cipher is used.
// The result is a new slice the caller owns.
func (a *AEAD) Open(nonce, associatedData, ciphertextB64 string) ([]byte, error) {
	return a.OpenBytes(nonce, associatedData, []byte(ciphertextB64))
}

// OpenBytes is Open with the base64 ciphertext as bytes, as it sits in a
// notify body. It makes one allocation: the ciphertext is decoded into the
// returned slice and decrypted in place.
func (a *AEAD) OpenBytes(nonce, associatedData string, ciphertextB64 []byte) ([]byte, error) {
	if len(nonce) != AEADNonceSize {
		return nil, fmt.Errorf("%w, got %d", ErrAEADNonce, len(nonce))
	}
	src := ciphertextB64
	if len(src)%4 != 0 {
		return nil, ErrAEADBase64
	}
	if len(src) > base64.StdEncoding.EncodedLen(maxAEADPayload) {
		return nil, ErrAEADShort
	}
	pad := 0
	if len(src) > 0 && src[len(src)-1] == '=' {
		pad++
		if len(src) > 1 && src[len(src)-2] == '=' {
			pad++
		}
	}
	max := len(src) / 4 * 3
	want := max - pad
	if want < AEADTagSize {
		return nil, ErrAEADShort
	}
	// One buffer: the decoded ciphertext (decrypted in place), then copies
	// of the nonce and the associated data, so that nothing else escapes
	// to the heap through the cipher.AEAD interface.
	buf := make([]byte, max+AEADNonceSize+len(associatedData))
	n, err := base64.StdEncoding.Strict().Decode(buf[:max], src)
	// Go's decoder skips \r and \n; a length short of the padded count
	// means it did, and such a ciphertext is refused like any other non-
	// standard base64.
	if err != nil || n != want {
		return nil, ErrAEADBase64
	}
	iv := buf[max : max+AEADNonceSize]
	copy(iv, nonce)
	ad := buf[max+AEADNonceSize:]
	copy(ad, associatedData)
	pt, err := a.gcm.Open(buf[:0], iv, buf[:n], ad)
	if err != nil {
		return nil, ErrAEADAuth
	}
	return pt[:len(pt):len(pt)], nil
}

// Seal encrypts plaintext as WeChat Pay does and returns the base64 of
// ciphertext‖tag. nonce must be 12 bytes; reusing a nonce under one key
// breaks GCM, so take a fresh one per message (NewNonce()[:12]).
func (a *AEAD) Seal(nonce, associatedData string, plaintext []byte) (string, error) {
	if len(nonce) != AEADNonceSize {
		return "", fmt.Errorf("%w, got %d", ErrAEADNonce, len(nonce))
	}
	ct := a.gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return base64.StdEncoding.EncodeToString(ct), nil
}

// DecryptAEAD decrypts an APIv3 encrypted resource (a notify's resource, a
// platform certificate's encrypt_certificate; protocol.md §13.4) with the
// APIv3 key. The key must be exactly 32 bytes and the nonce exactly 12;
// bad base64, a ciphertext shorter than the tag and a failed authentication
// are errors (ErrAPIv3Key, ErrAEADNonce, ErrAEADBase64, ErrAEADShort,
// ErrAEADAuth). It never panics. Callers that decrypt often should keep an
// AEAD from NewAEAD.
func DecryptAEAD(apiV3Key wxpay.Secret, nonce, associatedData, ciphertextB64 string) ([]byte, error) {
	if len(nonce) != AEADNonceSize {
		return nil, fmt.Errorf("%w, got %d", ErrAEADNonce, len(nonce))
	}
	a, err := NewAEAD(apiV3Key)
	if err != nil {
		return nil, err
	}
	return a.Open(nonce, associatedData, ciphertextB64)
}

// EncryptAEAD is the inverse of DecryptAEAD: AES-256-GCM with the APIv3
// key, base64 of ciphertext‖tag. The simulator uses it to build notifies
// and certificate lists; tests use it to forge them.
func EncryptAEAD(apiV3Key wxpay.Secret, nonce, associatedData string, plaintext []byte) (string, error) {
	a, err := NewAEAD(apiV3Key)
	if err != nil {
		return "", err
	}
	return a.Seal(nonce, associatedData, plaintext)
}
