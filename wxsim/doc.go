// Package wxsim is a local WeChat Pay v2 and mini-program login simulator:
// a faithful, stateful stand-in for api.mch.weixin.qq.com and
// api.weixin.qq.com, so that a merchant can write and test a whole
// integration offline and change only the base URL on launch day.
//
// New returns a *Simulator, an http.Handler that serves
//
//   - WeChat Pay v2 at the real paths: /pay/unifiedorder, /pay/orderquery,
//     /pay/closeorder, /secapi/pay/refund, /pay/refundquery,
//     /pay/downloadbill, /pay/downloadfundflow, /pay/micropay,
//     /secapi/pay/reverse, /tools/shorturl, /payitil/report,
//     /tools/authcodetoopenid, and both sandboxes (/sandboxnew/… and
//     /xdc/apiv2sandbox/… with their getsignkey paths);
//   - the mini-program login, GET /sns/jscode2session;
//   - the control API under /sim/v1/ (JSON), which plays the WeChat user
//     (users and balances, wx.login codes, wx.requestPayment with a
//     verified paySign, Native QR scans, payment codes) and steers the
//     simulator (clock, faults, the notify log, the ledger);
//   - the cashier page, GET /sim/.
//
// Requests are validated as WeChat does (POST, UTF-8, strict flat XML,
// required fields, lengths and formats, mch_id/appid pairing, the signature
// with the request's sign type) and answered with the documented envelope,
// signed with the request's sign type; protocol errors come back as
// return_code=FAIL, business errors as result_code=FAIL with err_code
// (protocol.md §3). Orders follow WeChat's state machine and idempotency
// rules; refunds are accepted PROCESSING and succeed after a delay; pay
// and refund notifies are delivered to the merchant on WeChat's retry
// schedule until it answers exactly SUCCESS, and every try is logged.
// Bills are written from the simulator's own ledger, byte for byte in
// WeChat's format.
//
// Time is injected. With a ManualClock nothing time-driven happens until
// the clock is advanced (Simulator.Advance, ManualClock.Advance or POST
// /sim/v1/clock), which runs every notify retry, refund completion and
// micropay completion that falls due, in order, deterministically. With
// the RealClock a background scheduler fires them, and Config.TimeScale
// shrinks the simulator's delays (at 60000 the 24-hour notify schedule
// takes 1.5 s).
//
// Faults are injected per API (InjectFault, POST /sim/v1/faults):
// SYSTEMERROR, HTTP 500, a slow answer, a connection dropped before or
// after the state changed; notifies can be duplicated, delayed, reordered,
// dropped or preceded by a bad-signature probe.
//
// For TLS, NewCA creates a local CA with a server certificate for WeChat's
// host names and each merchant's client certificate (PEM and PKCS#12);
// /secapi/* then requires the merchant's certificate as WeChat does.
//
// A checker reads the ledger (Ledger, Orders, Refunds, Users) to verify a
// merchant's records: which orders were paid and for how much, every
// refund with an execution counter that must stay at most 1.
//
// The simulator imports only the standard library, package wxpay for the
// vocabulary and package wxcrypto for signatures and the req_info cipher;
// its XML codec and wire structures are its own, so that a codec bug in
// the SDK cannot be cancelled by the same bug here.
package wxsim
