// Package webui serves the merchant service's two web pages, embedded in
// the binary and working offline (no build step, no CDN, no external
// fonts or scripts: plain HTML, CSS and vanilla JavaScript):
//
//   - Shop, the emulated mini program (served at "/" by `wxpay serve
//     --sim`): a phone-sized page whose `wx` shim plays the WeChat client
//     against the simulator's control API (/sim/v1/…): wx.login asks the
//     simulator for a login code, wx.requestPayment asks it to pay with
//     the paySign the merchant server made. Above the shim, the page is
//     written as a mini program is: log in, list the products, fill a
//     cart, create the order, call wx.requestPayment, then poll the
//     order until the server says PAID — never trusting the client's
//     "requestPayment:ok" alone. A network log shows every request and
//     answer, tokens masked.
//   - Admin, the dashboard (served at "/admin/"): orders with filters and
//     paging, an order's timeline (events, anomalies, outbox, refunds),
//     "sync with WeChat", refunds, reconciliation and anomalies, over the
//     admin API (/admin/api/v1/…) with a token kept in sessionStorage.
//
// The pages call only the HTTP API of merchant/httpapi and the
// simulator's control API, on the same origin. Both handlers answer GET
// and HEAD for their page and its assets and 404 anything else: Admin
// never answers /admin/api/…, which belongs to the API. Every answer
// carries a Content-Security-Policy allowing only 'self', nosniff,
// no-referrer and DENY framing; files are revalidated by ETag.
//
// The mini program's client logic (static/shop/wxpay-client.js) is the
// very file examples/miniprogram/utils/wxpay-client.js runs in a real
// mini program over the real wx.login, wx.request and wx.requestPayment.
//
// Mounting, with merchant/httpapi (whose own /api/ and /admin/api/ stay
// its own), without stripping prefixes:
//
//	srv.Mount("/admin/", webui.Admin(webui.WithTitle(title)))
//	srv.Mount("/sim/", simulator)                               // with --sim
//	srv.Mount("/", webui.Shop(webui.WithTitle(title), webui.WithAppID(appID))) // with --sim
package webui
