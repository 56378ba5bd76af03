package wxsim

import (
	_ "embed"
	"net/http"
)

// cashierPage is the cashier page: plain HTML and a little vanilla JS that
// drive the control API; no external resources.
//
//go:embed static/index.html
var cashierPage []byte

// servePage serves GET /sim/.
func (s *Simulator) servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(cashierPage)
}
