// Package wxsim is a local WeChat Pay (v2 and APIv3) and mini-program
// login simulator: a faithful, stateful stand-in for
// api.mch.weixin.qq.com and api.weixin.qq.com, so that a merchant can
// write and test a whole integration offline and change only the base URL
// on launch day.
//
// New returns a *Simulator, an http.Handler that serves
//
//   - WeChat Pay v2 at the real paths: /pay/unifiedorder, /pay/orderquery,
//     /pay/closeorder, /secapi/pay/refund, /pay/refundquery,
//     /pay/downloadbill, /pay/downloadfundflow, /pay/micropay,
//     /secapi/pay/reverse, /tools/shorturl, /payitil/report,
//     /tools/authcodetoopenid, and both sandboxes (/sandboxnew/… and
//     /xdc/apiv2sandbox/… with their getsignkey paths);
//   - WeChat Pay APIv3 under /v3/ (see APIv3 below);
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
// # APIv3
//
// The simulator also serves WeChat Pay APIv3 (protocol.md §13) over the
// same merchant state: an order placed through /v3/pay/transactions/jsapi
// (native, app, h5) is queried through v3 or v2, paid by a user like any
// other (wx.requestPayment with signType RSA checks the v3 paySign
// against the merchant's registered certificate), refunded through either
// version, and appears in the same bills. The paths are
// /v3/pay/transactions/{jsapi,native,app,h5},
// /v3/pay/transactions/id/{transaction_id},
// /v3/pay/transactions/out-trade-no/{out_trade_no}[/close],
// /v3/refund/domestic/refunds[/{out_refund_no}], /v3/bill/tradebill,
// /v3/bill/fundflowbill (whose download_url points back at the simulator,
// /v3/billdownload/file) and /v3/certificates.
//
// Requests must carry a valid WECHATPAY2-SHA256-RSA2048 Authorization:
// a known mchid, the serial of a merchant API certificate registered in
// Merchant.V3 (or issued by the simulator: V3Credentials, or by the CA:
// CA.ConfigureV3), a timestamp within 5 minutes of WeChat's clock and a
// signature over the exact method, URL and body; otherwise 401 SIGN_ERROR
// with a hint in the Wxsim-Sign-Hint header. Bodies are decoded strictly
// (unknown fields are PARAM_ERROR). Errors are {code, message, detail}
// with the statuses of protocol.md §13.7, in the newer underscore
// spelling. Every answer but a bill file is signed (Wechatpay-Timestamp,
// -Nonce, -Signature, -Serial) and carries a Request-Id.
//
// Orders placed and refunds requested through v3 are notified in v3: a
// JSON body with the resource encrypted by AEAD_AES_256_GCM under the
// merchant's APIv3 key, signed afresh on each try, retried on the v2
// schedule until the merchant answers 200 or 204 (any body), logged with
// kinds pay_v3 and refund_v3 and the serial that signed.
//
// WeChat's side of the keys is simulated per merchant: platform
// certificates (RotatePlatformCertificate, SetPlatformCertificateShare,
// RemovePlatformCertificate) and the WeChat Pay public key
// (SwitchToPublicKey, Merchant.V3.PublicKeyOnly), signing at random in
// the proportions set during a rotation or switch-over. SetV3ClockSkew
// skews WeChat's clock, SetV3ProbeRate and the V3_PROBE fault send
// WECHATPAY/SIGNTEST/ probe signatures, and SendV3Notify sends validly
// signed malicious notifies (another amount, a bad GCM nonce …). The
// control API has the same under /sim/v1/v3/. Generated RSA keys are
// cached for the life of the process; V3Config.PlatformKeys and
// PublicKeyKeys fix them.
//
// The simulator imports only the standard library, package wxpay for the
// vocabulary and package wxcrypto for signatures and the req_info and
// AES-GCM ciphers;
// its XML codec and wire structures are its own, so that a codec bug in
// the SDK cannot be cancelled by the same bug here.
package wxsim
