// Package merchant is the domain of the merchant service: orders, refunds,
// products, their states and the transitions between them, the errors the
// service returns, and the interfaces of what it needs from the outside —
// a Store for its records and a Gateway to WeChat.
//
// It does no I/O and knows nothing of SQL, HTTP or XML: those are the
// adapters' business (sqlite, postgres, httpapi, wxgateway). Every rule
// about money lives here as plain code that tests can run alone:
//
//   - amounts are int64 fen, computed on the server from the catalog;
//   - an order moves NOTPAY → PAID → REFUND, or NOTPAY → CLOSED, and a late
//     payment turns CLOSED into PAID (with an exception) — never backwards;
//   - refunds of an order never add up to more than was paid.
package merchant
