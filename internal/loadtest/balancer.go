package loadtest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// balancer is the service's public address when there is more than one
// instance: WeChat's notifies (and the service's notify_url, the same for
// every instance as behind a production load balancer) go to it, and it
// forwards each to a live instance, trying the next one when an instance
// is down. With per-instance notify URLs an order whose creation is
// retried on another instance would call unifiedorder with another
// notify_url, which WeChat refuses as a different order under the same
// out_trade_no.
type balancer struct {
	e    *engine
	url  string
	addr string
	srv  *http.Server
	next atomic.Uint64
	hc   *http.Client
}

func startBalancer(e *engine) (*balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{e: e, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(),
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *balancer) close() { _ = b.srv.Close() }

// ServeHTTP forwards the request to the instances in turn until one
// answers; 502 when none does (WeChat then retries the notify).
func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	insts := b.e.insts
	start := b.next.Add(1)
	for i := range insts {
		in := insts[(start+uint64(i))%uint64(len(insts))]
		req, err := http.NewRequestWithContext(r.Context(), r.Method, in.url+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			break
		}
		req.Header = r.Header.Clone()
		resp, err := b.hc.Do(req)
		if err != nil {
			continue // down (killed): the next one
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no instance answers", http.StatusBadGateway)
}
