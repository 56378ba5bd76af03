// Package apiv2 is a client for WeChat Pay API v2 (XML, MD5 / HMAC-SHA256
// signatures): the API a mini-program merchant server uses to place orders
// (unifiedorder), sign the pay parameters for wx.requestPayment, verify the
// pay notify, query, close, refund, download bills, and take payment codes.
//
// Every call takes a context, a typed request and returns a typed answer.
// Amounts are int64 fen. Answers are checked in order — HTTP status,
// return_code, signature, result_code — and failures are *Error values:
// branch on them with errors.Is and the ErrorCode sentinels
// (ErrOrderPaid, ErrOrderNotExist, ErrUserPaying …). A failure after which
// the call may or may not have taken effect (network failure, timeout,
// SYSTEMERROR, an answer that does not verify) matches ErrOutcomeUnknown:
// query, never assume.
//
// The XML decoder is strict: it refuses a DOCTYPE, duplicate elements,
// nested elements and trailing content, so that the value that was verified
// is the value that is used. Signing and parsing are allocation-light; see
// the benchmarks.
//
// Point the client at the simulator (package wxsim, or `wxpay sim`) with
// WithBaseURL to develop without a merchant account.
package apiv2
