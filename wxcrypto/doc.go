// Package wxcrypto holds the signing and encryption primitives that both the
// wxpay SDK and the simulator use, so that neither carries its own copy:
//
//   - the v2 signature (protocol.md §2): MD5 or HMAC-SHA256 over the sorted,
//     non-empty fields except sign, with "&key=<API key>" appended, in
//     upper-case hex; verification in constant time; the canonical string
//     (key redacted) and a Diagnosis for when a signature does not match;
//   - the refund-notify req_info cipher (protocol.md §7): AES-256-ECB keyed
//     with the lower-case hex MD5 of the API key, PKCS#7 padding;
//   - nonces from crypto/rand;
//   - APIv3 (protocol.md §13): request and response signatures
//     (SHA256withRSA over the documented messages, the Authorization
//     header), RSA keys and certificates and their serials, AES-256-GCM
//     resource decryption with the nonce length checked before use,
//     RSA-OAEP for sensitive fields, and the v3 mini-program paySign.
//
// Signing does not allocate: the canonical string is built in a pooled
// buffer and hashed with md5.Sum / sha256.Sum256.
package wxcrypto
