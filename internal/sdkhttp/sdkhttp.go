// Package sdkhttp holds the HTTP rules the SDK clients (apiv2, apiv3,
// miniprogram) share: WeChat's notify-URL rule, a transport sized for a
// busy merchant server, and how to tell that a request never left.
package sdkhttp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// CheckNotifyURL applies WeChat's rules to a notify URL: absolute http(s),
// at most 256 characters, no query string. It is on the hot path of every
// order, so it scans instead of parsing.
func CheckNotifyURL(s string) error {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(s, "http://")
	}
	host, _, _ := strings.Cut(rest, "/")
	if !ok || host == "" || len(s) > 256 || strings.ContainsAny(s, " \t\r\n#<>\"") {
		return fmt.Errorf("NotifyURL %q is not an absolute http(s) URL of at most 256 characters", s)
	}
	if strings.IndexByte(s, '?') >= 0 {
		return fmt.Errorf("NotifyURL %q has a query string; WeChat refuses one", s)
	}
	return nil
}

// PooledTransport is the default transport with room for the idle
// connections a busy merchant server keeps to one WeChat host (the
// standard library keeps 2 per host, so most calls would reconnect).
func PooledTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	return tr
}

// NeverSent reports whether a transport error happened before the request
// could reach the server (DNS failure, connection refused), so that even a
// call that is not safe to repeat may go to a backup host.
func NeverSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
