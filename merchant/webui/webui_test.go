package webui_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/merchant/webui"
)

// site is a handler under test with the paths it must answer.
type site struct {
	name    string
	handler http.Handler
	page    string            // the page's path
	assets  map[string]string // path -> Content-Type prefix
}

func sites() []site {
	return []site{
		{
			name: "shop", handler: webui.Shop(), page: "/",
			assets: map[string]string{
				"/":                       "text/html; charset=utf-8",
				"/index.html":             "text/html; charset=utf-8",
				"/assets/base.css":        "text/css; charset=utf-8",
				"/assets/shop.css":        "text/css; charset=utf-8",
				"/assets/wx.js":           "text/javascript; charset=utf-8",
				"/assets/wxpay-client.js": "text/javascript; charset=utf-8",
				"/assets/mp.js":           "text/javascript; charset=utf-8",
				"/assets/devtools.js":     "text/javascript; charset=utf-8",
				"/assets/shop.js":         "text/javascript; charset=utf-8",
				"/assets/favicon.svg":     "image/svg+xml",
				"/assets/money.js":        "text/javascript; charset=utf-8",
			},
		},
		{
			name: "admin", handler: webui.Admin(), page: "/admin/",
			assets: map[string]string{
				"/admin/":                   "text/html; charset=utf-8",
				"/admin/index.html":         "text/html; charset=utf-8",
				"/admin/assets/base.css":    "text/css; charset=utf-8",
				"/admin/assets/admin.css":   "text/css; charset=utf-8",
				"/admin/assets/money.js":    "text/javascript; charset=utf-8",
				"/admin/assets/admin.js":    "text/javascript; charset=utf-8",
				"/admin/assets/favicon.svg": "image/svg+xml",
			},
		},
	}
}

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy = %q", what, csp)
	}
	for _, src := range strings.Split(csp, ";") {
		for _, tok := range strings.Fields(src)[1:] {
			if tok != "'self'" && tok != "'none'" {
				t.Errorf("%s: Content-Security-Policy allows %s in %q", what, tok, strings.TrimSpace(src))
			}
		}
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
}

func TestPagesAndAssets(t *testing.T) {
	for _, s := range sites() {
		for p, ct := range s.assets {
			res := get(t, s.handler, "GET", p, nil)
			b := body(t, res)
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s GET %s: status %d", s.name, p, res.StatusCode)
				continue
			}
			if got := res.Header.Get("Content-Type"); got != ct {
				t.Errorf("%s GET %s: Content-Type %q, want %q", s.name, p, got, ct)
			}
			if len(b) == 0 {
				t.Errorf("%s GET %s: empty body", s.name, p)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("%s GET %s: Cache-Control %q", s.name, p, got)
			}
			if res.Header.Get("ETag") == "" {
				t.Errorf("%s GET %s: no ETag", s.name, p)
			}
			checkSecurityHeaders(t, s.name+" GET "+p, res.Header)

			head := get(t, s.handler, "HEAD", p, nil)
			if head.StatusCode != http.StatusOK || body(t, head) != "" || head.Header.Get("Content-Type") != ct {
				t.Errorf("%s HEAD %s: status %d, Content-Type %q", s.name, p, head.StatusCode, head.Header.Get("Content-Type"))
			}
			again := get(t, s.handler, "GET", p, http.Header{"If-None-Match": {res.Header.Get("ETag")}})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("%s GET %s with If-None-Match: status %d, want 304", s.name, p, again.StatusCode)
			}
		}
	}
}

func TestEveryReferenceIsServed(t *testing.T) {
	for _, s := range sites() {
		page := body(t, get(t, s.handler, "GET", s.page, nil))
		base, _ := url.Parse("http://example.test" + s.page)
		refs := references(page)
		if len(refs) < 4 {
			t.Fatalf("%s: only %d references found: %v", s.name, len(refs), refs)
		}
		for _, ref := range refs {
			u, err := base.Parse(ref)
			if err != nil {
				t.Errorf("%s: bad reference %q: %v", s.name, ref, err)
				continue
			}
			if u.Host != "example.test" {
				continue // TestSameOriginOnly reports it
			}
			if u.Path == "/sim/" || u.Path == "/admin/" || u.Path == "/" {
				continue // links to the other pages
			}
			if res := get(t, s.handler, "GET", u.Path, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s references %q (%s), which answers %d", s.name, ref, u.Path, res.StatusCode)
			}
		}
	}
}

var attrRE = regexp.MustCompile(`(?i)\s(src|href|action|srcset|poster|data|formaction)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))`)

// references returns the values of the URL attributes of an HTML page.
func references(page string) []string {
	var out []string
	for _, m := range attrRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[3]+m[4]+m[5])
	}
	return out
}

func TestSameOriginOnly(t *testing.T) {
	absolute := regexp.MustCompile(`(?i)^([a-z][a-z0-9+.-]*:|//|\\\\)`)
	for _, s := range sites() {
		page := body(t, get(t, s.handler, "GET", s.page, nil))
		for _, ref := range references(page) {
			if absolute.MatchString(strings.TrimSpace(ref)) {
				t.Errorf("%s: the page references %q, which is not a same-origin path", s.name, ref)
			}
		}
		if strings.Contains(strings.ToLower(page), "<iframe") || strings.Contains(strings.ToLower(page), "@import") {
			t.Errorf("%s: the page embeds another document or imports a stylesheet", s.name)
		}
		// No inline script or style: the CSP would block them.
		if regexp.MustCompile(`(?is)<script(\s[^>]*)?>\s*[^<\s]`).MatchString(page) || strings.Contains(page, "<style") ||
			regexp.MustCompile(`(?i)\sstyle\s*=`).MatchString(page) || regexp.MustCompile(`(?i)\son[a-z]+\s*=`).MatchString(page) {
			t.Errorf("%s: the page has inline script, style or event handlers, which its CSP forbids", s.name)
		}
	}
	// The assets fetch nothing from elsewhere either.
	literalURL := regexp.MustCompile("[\"'`(]\\s*(https?:)?//")
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("static", p))
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".svg") {
			b = bytes.ReplaceAll(b, []byte(`"http://www.w3.org/2000/svg"`), nil) // the SVG namespace, not a fetch
		}
		if m := literalURL.Find(b); m != nil {
			t.Errorf("static/%s holds a URL literal %q: only same-origin paths are allowed", p, m)
		}
		if strings.HasSuffix(p, ".css") && regexp.MustCompile(`(?i)@import|url\(`).Match(b) {
			t.Errorf("static/%s imports or loads a resource", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnknownPaths(t *testing.T) {
	cases := map[string][]string{
		"shop": {"/nope", "/assets/", "/assets/nope.js", "/assets/../webui.go", "/assets/index.html", "/admin/",
			"/admin/assets/admin.js", "/assets/admin.js", "/static/shop/shop.js", "/index.htm", "/api/v1/products", "/sim/"},
		"admin": {"/admin/api/x", "/admin/api/v1/orders", "/admin/api/", "/admin/nope", "/admin/assets/", "/admin/assets/shop.js",
			"/admin/assets/wx.js", "/", "/assets/admin.js", "/admin", "/admin/assets/index.html"},
	}
	for _, s := range sites() {
		for _, p := range cases[s.name] {
			for _, method := range []string{"GET", "POST"} {
				res := get(t, s.handler, method, p, nil)
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s %s: status %d, want 404", s.name, method, p, res.StatusCode)
				}
				checkSecurityHeaders(t, s.name+" "+method+" "+p, res.Header)
			}
		}
	}
}

func TestMethods(t *testing.T) {
	for _, s := range sites() {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			res := get(t, s.handler, method, s.page, nil)
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s %s: status %d, Allow %q; want 405 and GET, HEAD", s.name, method, s.page, res.StatusCode, res.Header.Get("Allow"))
			}
		}
	}
}

// TestMountedBesideTheAPI mounts the handlers as the command does: the
// admin API keeps /admin/api/, the dashboard answers only its own files.
func TestMountedBesideTheAPI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"api":true}`)
	})
	mux := http.NewServeMux()
	mux.Handle("/admin/api/", api)
	mux.Handle("/api/", api)
	mux.Handle("/admin/", webui.Admin())
	mux.Handle("/", webui.Shop())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for p, want := range map[string]string{
		"/admin/api/v1/orders":   `{"api":true}`,
		"/admin/api/x":           `{"api":true}`,
		"/api/v1/products":       `{"api":true}`,
		"/admin/":                "<!doctype html>",
		"/admin/assets/admin.js": "admin.js",
		"/":                      "<!doctype html>",
		"/assets/shop.js":        "shop.js",
	} {
		res, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b := body(t, res)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(b, want) {
			t.Errorf("GET %s: status %d, body %.60q; want %q", p, res.StatusCode, b, want)
		}
	}
	// "/admin" is redirected to the dashboard by the mux.
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(srv.URL + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 3 || res.Header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestOptions(t *testing.T) {
	h := webui.Shop(webui.WithTitle(`Tea & <Cake>`), webui.WithAppID(`wx426b3015555a46be"><script>`))
	page := body(t, get(t, h, "GET", "/", nil))
	if !strings.Contains(page, "Tea &amp; &lt;Cake&gt;") || strings.Contains(page, "<Cake>") {
		t.Errorf("the title is not escaped:\n%s", page)
	}
	if !strings.Contains(page, `<meta name="wxpay-appid" content="wx426b3015555a46be&#34;&gt;&lt;script&gt;">`) {
		t.Errorf("the app id is not in its meta tag, escaped:\n%s", page)
	}
	def := body(t, get(t, webui.Shop(), "GET", "/", nil))
	if !strings.Contains(def, "<title>"+webui.DefaultTitle) || !strings.Contains(def, `<meta name="wxpay-appid" content="">`) {
		t.Errorf("the defaults are not in the page")
	}
	admin := body(t, get(t, webui.Admin(webui.WithTitle("Tea house")), "GET", "/admin/", nil))
	if !strings.Contains(admin, "Tea house") {
		t.Errorf("the admin page does not show the title")
	}
	// An ETag follows the content.
	a := get(t, webui.Shop(webui.WithTitle("A")), "GET", "/", nil).Header.Get("ETag")
	b := get(t, webui.Shop(webui.WithTitle("B")), "GET", "/", nil).Header.Get("ETag")
	if a == b {
		t.Errorf("two different pages have the same ETag %s", a)
	}
}

// TestStableSelectors keeps the ids and attributes the browser tests use.
func TestStableSelectors(t *testing.T) {
	shop := body(t, get(t, webui.Shop(), "GET", "/", nil))
	for _, id := range []string{"login-status", "pay-button", "order-status", "order-no", "order-amount", "order-panel",
		"order-history", "product-list", "network-log", "outcome-success", "outcome-cancel", "outcome-insufficient",
		"wx-modal", "wx-modal-confirm", "wx-toast", "pay-again", "close-order"} {
		if !strings.Contains(shop, `id="`+id+`"`) {
			t.Errorf("the shop page has no #%s", id)
		}
	}
	js, err := os.ReadFile("static/shop/shop.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `'data-sku': p.sku`) {
		t.Errorf("shop.js no longer renders product buttons with data-sku")
	}
	admin := body(t, get(t, webui.Admin(), "GET", "/admin/", nil))
	for _, id := range []string{"token-input", "token-submit", "orders-table", "orders-next", "refund-amount", "refund-submit",
		"order-status", "sync-button", "recon-date", "recon-run", "recon-report", "recon-exceptions", "anomalies-table",
		"filter-status", "filter-since", "filter-until", "sim-link", "timeline"} {
		if !strings.Contains(admin, `id="`+id+`"`) {
			t.Errorf("the admin page has no #%s", id)
		}
	}
	// The token field has no name: a form submitted without JavaScript
	// cannot put the token in a URL.
	if m := regexp.MustCompile(`<input id="token-input"[^>]*>`).FindString(admin); m == "" || strings.Contains(m, "name=") {
		t.Errorf("token input: %q", m)
	}
	ajs, err := os.ReadFile("static/admin/admin.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`'data-order': no`, `'refund-status-' + r.out_refund_no`, `class: 'refund-status'`, "sessionStorage"} {
		if !strings.Contains(string(ajs), want) {
			t.Errorf("admin.js no longer has %s", want)
		}
	}
	if strings.Contains(string(ajs), "localStorage") {
		t.Errorf("admin.js uses localStorage: the token belongs in sessionStorage only")
	}
}

func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: JavaScript checks skipped")
	}
	return node
}

func jsFiles(t *testing.T, roots ...string) []string {
	t.Helper()
	var files []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".js") {
				files = append(files, p)
			}
			return err
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return files
}

func TestJavaScriptSyntax(t *testing.T) {
	node := nodeOrSkip(t)
	files := jsFiles(t, "static", "testdata", miniProgram)
	if len(files) < 8 {
		t.Fatalf("only %d JavaScript files found", len(files))
	}
	for _, f := range files {
		out, err := exec.Command(node, "--check", f).CombinedOutput()
		if err != nil {
			t.Errorf("node --check %s: %v\n%s", f, err, out)
		}
	}
}

// TestJavaScript runs testdata/js_test.js: the money helpers, and the mini
// program's client against a fake wx (login, order with Idempotency-Key,
// requestPayment, polling until the server says PAID, re-login on 401).
func TestJavaScript(t *testing.T) {
	node := nodeOrSkip(t)
	abs, err := filepath.Abs("static")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "testdata/js_test.js", abs).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("node testdata/js_test.js: %v\n%s", err, out)
	}
}

// miniProgram is the sample mini program that runs the same client.
const miniProgram = "../../examples/miniprogram"

// TestMiniProgramExample keeps the sample mini program in step with the
// emulated one: the same client file, valid JSON configs, every page's
// four files.
func TestMiniProgramExample(t *testing.T) {
	if _, err := os.Stat(miniProgram); err != nil {
		t.Skip("examples/miniprogram is not here")
	}
	ours, err := os.ReadFile("static/shop/wxpay-client.js")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile(filepath.Join(miniProgram, "utils", "wxpay-client.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Errorf("examples/miniprogram/utils/wxpay-client.js differs from merchant/webui/static/shop/wxpay-client.js: copy one onto the other")
	}
	var app struct {
		Pages []string `json:"pages"`
	}
	readJSON(t, filepath.Join(miniProgram, "app.json"), &app)
	if len(app.Pages) < 2 {
		t.Errorf("app.json lists %d pages", len(app.Pages))
	}
	for _, p := range app.Pages {
		for _, ext := range []string{".js", ".wxml", ".wxss", ".json"} {
			if _, err := os.Stat(filepath.Join(miniProgram, p+ext)); err != nil {
				t.Errorf("page %s: %v", p, err)
			}
		}
		var v map[string]any
		readJSON(t, filepath.Join(miniProgram, p+".json"), &v)
	}
	var proj struct {
		AppID       string `json:"appid"`
		CompileType string `json:"compileType"`
		Setting     struct {
			URLCheck *bool `json:"urlCheck"`
		} `json:"setting"`
	}
	readJSON(t, filepath.Join(miniProgram, "project.config.json"), &proj)
	if proj.AppID != "wx426b3015555a46be" || proj.CompileType != "miniprogram" {
		t.Errorf("project.config.json: appid %q, compileType %q", proj.AppID, proj.CompileType)
	}
	// Nothing in the mini program signs: paySign comes from the server.
	for _, f := range jsFiles(t, miniProgram) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		low := strings.ToLower(string(b))
		for _, bad := range []string{"md5(", "hmac", "e10adc3949ba59abbe56e057f20f883e", "01c6d59a3f9024db6336662ac95c8e74", "appsecret"} {
			if strings.Contains(low, bad) {
				t.Errorf("%s holds %q: the mini program must never sign or hold a secret", f, bad)
			}
		}
	}
	if !slices.Contains(app.Pages, "pages/index/index") || !slices.Contains(app.Pages, "pages/order/order") {
		t.Errorf("app.json pages: %v", app.Pages)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}
