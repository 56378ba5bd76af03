package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// DefaultTitle is the shop's title when WithTitle is not given.
const DefaultTitle = "wxpay demo shop"

// Option configures Shop and Admin.
type Option func(*options)

type options struct {
	title string
	appID string
}

// WithTitle sets the shop's name, shown in the emulated mini program's
// navigation bar and in both pages' titles. Default DefaultTitle.
func WithTitle(title string) Option {
	return func(o *options) { o.title = strings.TrimSpace(title) }
}

// WithAppID sets the mini program's AppID, the one the emulated WeChat
// client asks login codes for (POST /sim/v1/login-codes) and creates its
// user in. Empty (the default): the simulator's first app, which is the
// default configuration of `wxpay serve --sim`. When paying, the shim uses
// the appId the server signed (pay_params.appId).
func WithAppID(appID string) Option {
	return func(o *options) { o.appID = strings.TrimSpace(appID) }
}

func newOptions(opts []Option) options {
	o := options{title: DefaultTitle}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.title == "" {
		o.title = DefaultTitle
	}
	return o
}

// Shop returns the handler of the emulated mini program. It answers GET
// and HEAD for "/" (also "/index.html") and "/assets/<file>", and 404 for
// anything else; mount it at "/" beside the simulator's "/sim/" (the
// page's wx shim calls /sim/v1/…) and the API's "/api/".
func Shop(opts ...Option) http.Handler {
	o := newOptions(opts)
	return mustSite(o, "/", "static/shop/index.html", []assetDir{
		{"static/common", "assets/"},
		{"static/shop", "assets/"},
	})
}

// Admin returns the handler of the admin dashboard. It answers GET and
// HEAD for "/admin/" (also "/admin/index.html") and
// "/admin/assets/<file>", and 404 for anything else — /admin/api/… in
// particular, which is the admin API's. Mount it at "/admin/" without
// stripping the prefix; the API keeps the longer "/admin/api/".
func Admin(opts ...Option) http.Handler {
	o := newOptions(opts)
	return mustSite(o, "/admin/", "static/admin/index.html", []assetDir{
		{"static/common", "assets/"},
		{"static/admin", "assets/"},
	})
}

// assetDir serves the files of an embedded directory under a prefix of
// the site's root.
type assetDir struct {
	dir    string // in the embedded FS
	prefix string // under the site's root, ending in "/"
}

// file is one answer: its bytes, type and ETag, computed once.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// site serves a page at root and its assets, nothing else.
type site struct {
	files map[string]*file // by full URL path
}

// Security headers of every answer. The pages use no inline script or
// style, so the policy allows only the origin itself.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// contentTypes are the types of the files the sites hold.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json; charset=utf-8",
}

// pageData fills the page templates.
type pageData struct {
	Title string
	AppID string
}

func mustSite(o options, root, page string, dirs []assetDir) http.Handler {
	s, err := newSite(o, root, page, dirs)
	if err != nil {
		// The inputs are embedded files: a failure is a bug caught by the
		// package's tests, never a runtime condition.
		panic(err)
	}
	return s
}

func newSite(o options, root, page string, dirs []assetDir) (*site, error) {
	s := &site{files: map[string]*file{}}
	tpl, err := template.ParseFS(static, page)
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, pageData{Title: o.title, AppID: o.appID}); err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	index := newFile(buf.Bytes(), contentTypes[".html"])
	s.files[root] = index
	s.files[root+"index.html"] = index
	for _, d := range dirs {
		entries, err := fs.ReadDir(static, d.dir)
		if err != nil {
			return nil, fmt.Errorf("webui: %w", err)
		}
		for _, e := range entries {
			ct, ok := contentTypes[path.Ext(e.Name())]
			if e.IsDir() || !ok || e.Name() == "index.html" {
				continue
			}
			b, err := fs.ReadFile(static, d.dir+"/"+e.Name())
			if err != nil {
				return nil, fmt.Errorf("webui: %w", err)
			}
			s.files[root+d.prefix+e.Name()] = newFile(b, ct)
		}
	}
	return s, nil
}

func newFile(b []byte, contentType string) *file {
	sum := sha256.Sum256(b)
	return &file{body: b, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// ServeHTTP answers GET and HEAD for the site's files, 405 for another
// method on one of them and 404 for anything else.
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	setSecurityHeaders(h)
	f := s.files[r.URL.Path]
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", f.contentType)
	// Revalidate every time: a new binary serves new files under the same
	// names, and a 304 costs one round trip on loopback.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
