// Package httpapi is the HTTP face of the merchant service: the
// mini-program API, WeChat's notify endpoints, the admin API, probes and
// Prometheus metrics, over net/http's ServeMux patterns. It wraps
// payments.Service and adds only what belongs to HTTP: routing, JSON,
// authentication, limits, logging and metrics.
//
// Routes (design.md, "HTTP API"):
//
//	POST /api/v1/login                                  {"code"} → {"token","openid"}
//	GET  /api/v1/products                               → {"products":[{"sku","name","price"}]}
//	POST /api/v1/orders                        Bearer   {"items":[{"sku","quantity"}],"trade_type"} (+ Idempotency-Key)
//	GET  /api/v1/orders/{out_trade_no}         Bearer   the order, its refunds
//	POST /api/v1/orders/{out_trade_no}/close   Bearer   close an unpaid order
//	POST /api/v1/orders/{out_trade_no}/pay-params Bearer pay parameters again
//	POST /wxpay/notify/pay                              WeChat's pay notify (XML)
//	POST /wxpay/notify/refund                           WeChat's refund notify (XML)
//	POST /wxpay/native/callback                         Native mode-1 product callback (XML)
//	GET  /admin/api/v1/orders                  admin    ?status=&since=&until=&openid=&limit=&cursor=
//	GET  /admin/api/v1/orders/{out_trade_no}   admin    order, refunds, events, anomalies, outbox
//	POST /admin/api/v1/orders/{out_trade_no}/refunds admin {"refund_fee","reason","out_refund_no"?}
//	POST /admin/api/v1/orders/{out_trade_no}/sync admin ask WeChat, apply
//	GET  /admin/api/v1/anomalies               admin    ?out_trade_no=&limit=
//	POST /admin/api/v1/reconciliations         admin    {"date":"2026-11-28"}
//	GET  /admin/api/v1/reconciliations/{date}  admin    the stored report
//	GET  /healthz, GET /readyz, GET /metrics
//
// Errors are {"error":{"code","message"}} with the status of the one table
// in error.go (merchant's codes, plus too_large 413,
// unsupported_media_type 415, method_not_allowed 405 and
// not_implemented 501). Internal errors are logged and answered with a
// generic message. Unknown routes answer a JSON 404, wrong methods a JSON
// 405 with Allow.
//
// Security: the payer is always the session's user (an openid in a body
// is ignored); another user's order is not found (404); the admin token
// is compared in constant time; every body is capped; login and order
// creation are rate-limited per client IP and per user; the request log
// holds no body, token or Authorization header; a panic is a 500 without
// detail.
//
// Wiring, in the command:
//
//	m := httpapi.NewMetrics(reg)
//	gw, _ := wxgateway.New(wxgateway.Config{…, Observe: m.ObserveWeChat})
//	svc, _ := payments.New(store, gw, payments.Config{…, Metrics: m})
//	srv, _ := httpapi.New(httpapi.Config{Service: svc, AdminToken: tok, Metrics: m, Logger: log})
//	_ = srv.Mount("/sim/", sim)     // with --sim
//	_ = srv.Mount("/admin/", pages) // the dashboard; "/" for the mini-program page
//	hs := httpapi.NewHTTPServer(":8080", srv.Handler())
package httpapi
