package wxcrypto

import (
	"crypto/aes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors of the req_info cipher. Callers can branch on them with errors.Is;
// none of them carries key material.
var (
	ErrBase64  = errors.New("wxcrypto: req_info is not valid base64")
	ErrLength  = errors.New("wxcrypto: req_info length is not a positive multiple of 16")
	ErrPadding = errors.New("wxcrypto: req_info has bad PKCS#7 padding (wrong API key?)")
)

// ReqInfoKey returns the AES-256 key of the refund-notify cipher: the 32
// ASCII characters of the lower-case hex MD5 of the API key.
func ReqInfoKey(apiKey string) [32]byte {
	sum := md5.Sum([]byte(apiKey))
	var k [32]byte
	hex.Encode(k[:], sum[:])
	return k
}

// DecryptReqInfo decrypts the req_info field of a v2 refund notify
// (protocol.md §7): base64, then AES-256-ECB with ReqInfoKey(apiKey), then
// PKCS#7 unpadding. The result is the <root> XML document. Bad base64, a
// bad length or bad padding is an error, never a panic.
func DecryptReqInfo(apiKey, reqInfo string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(reqInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBase64, err)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, ErrLength
	}
	k := ReqInfoKey(apiKey)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(ct))
	for i := 0; i < len(ct); i += aes.BlockSize {
		block.Decrypt(pt[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
	}
	n := int(pt[len(pt)-1])
	if n == 0 || n > aes.BlockSize {
		return nil, ErrPadding
	}
	var bad byte
	for _, c := range pt[len(pt)-n:] {
		bad |= c ^ byte(n)
	}
	if bad != 0 {
		return nil, ErrPadding
	}
	return pt[:len(pt)-n], nil
}

// EncryptReqInfo is the inverse of DecryptReqInfo: PKCS#7 padding, AES-256-ECB
// with ReqInfoKey(apiKey), base64. The simulator uses it to build refund
// notifies; tests use it to forge them.
func EncryptReqInfo(apiKey string, plaintext []byte) string {
	k := ReqInfoKey(apiKey)
	block, _ := aes.NewCipher(k[:]) // a 32-byte key never fails
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+n)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(n)
	}
	for i := 0; i < len(buf); i += aes.BlockSize {
		block.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return base64.StdEncoding.EncodeToString(buf)
}
