// Package wxpay holds the shared vocabulary of WeChat Pay: trade types,
// trade states, refund statuses, bill types and signature types, as typed
// strings whose values are exactly what travels on the wire.
//
// It does no I/O. The SDK lives in the sub-packages:
//
//   - wxcrypto: v2 signatures (MD5, HMAC-SHA256), refund-notify req_info
//     decryption (AES-256-ECB), nonces;
//   - apiv2: the WeChat Pay v2 (XML) client, notify parsing, pay params;
//   - miniprogram: the mini-program login (jscode2session) client.
//
// Amounts are always int64 fen (1 CNY = 100 fen). Times are time.Time in Go
// and China Standard Time on the wire.
package wxpay
