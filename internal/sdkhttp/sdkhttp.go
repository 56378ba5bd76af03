// Package sdkhttp holds the HTTP rules the SDK clients (apiv2, apiv3,
// miniprogram) share: WeChat's notify-URL rule, a transport sized for a
// busy merchant server, and how to tell that a request never left.
package sdkhttp

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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
	if !ok || host == "" || len(s) > 256 || hasURLForbidden(s) {
		return fmt.Errorf("NotifyURL %q is not an absolute http(s) URL of at most 256 characters", s)
	}
	if strings.IndexByte(s, '?') >= 0 {
		return fmt.Errorf("NotifyURL %q has a query string; WeChat refuses one", s)
	}
	return nil
}

// hasURLForbidden reports whether s holds a byte a notify URL may not:
// white space, '#', '<', '>' or '"'. (A plain loop: strings.ContainsAny
// builds its set on every call.)
func hasURLForbidden(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n', '#', '<', '>', '"':
			return true
		}
	}
	return false
}

// BaseURL checks a base URL given to a client (WithBaseURL, a failover
// host): an absolute http(s) URL with a host, and no user info, query or
// fragment. It returns the URL without trailing slashes, so that paths can
// be appended. The error says what is wrong without quoting the URL, which
// may carry a secret.
func BaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", errors.New("not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("the scheme must be http or https")
	case u.Host == "":
		return "", errors.New("the URL has no host")
	case u.User != nil:
		return "", errors.New("user info is not allowed")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("a query or fragment is not allowed")
	}
	return strings.TrimRight(s, "/"), nil
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
