// Package apiv3 is a client for WeChat Pay APIv3 (JSON, RSA signatures,
// AES-256-GCM; protocol.md §13): orders for mini programs (JSAPI), Native,
// App and H5, queries, close, refunds, trade and fund-flow bills, the pay
// and refund notifies, and the RSA-signed pay parameters of
// wx.requestPayment.
//
// Every request is signed with the merchant API private key (the
// Authorization header, §13.1). Every answer and every notify is verified
// before it is used (§13.2): the Wechatpay-* headers, a ±5-minute window on
// the client's clock, a WECHATPAY/SIGNTEST/ probe refused, the signature
// over the raw body with the key Wechatpay-Serial names — a Verifier:
// PublicKeyVerifier for the WeChat Pay public key, CertificateManager for
// platform certificates (downloaded, decrypted, refreshed, kept by serial),
// MultiVerifier for both during a migration (§13.3). There is no switch to
// turn verification off; only bill files, unsigned by design, are checked
// by their SHA1 instead.
//
// Failures are *Error values: branch on them with errors.Is and the
// ErrorCode sentinels, which match both spellings WeChat has used
// (ErrOrderNotExist matches ORDER_NOT_EXIST and ORDERNOTEXIST). A failure
// after which the call may or may not have taken effect — network failure,
// timeout, HTTP 5xx, SYSTEM_ERROR, 202 USERPAYING, an answer that does not
// verify — matches ErrOutcomeUnknown: query, never assume.
//
// Amounts are int64 fen and times time.Time (RFC 3339 on the wire). Typed
// answers and notifies are decoded by a strict decoder: a repeated key, a
// fractional or negative amount, invalid UTF-8 are refused
// (reliability.md X10).
//
// Secrets (the private key, the APIv3 key) are wxpay.Secret or parsed keys
// held in unexported fields; the client prints as its merchant id and host,
// and logs never hold a key, a signature or a body.
package apiv3
