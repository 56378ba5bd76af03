package wxsim_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/wxsim"
)

type sessionAnswer struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
}

func (e *env) jscode(method string, q url.Values) sessionAnswer {
	e.t.Helper()
	b, resp := e.raw(method, "/sns/jscode2session?"+q.Encode(), nil)
	var a sessionAnswer
	if err := json.Unmarshal(b, &a); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("jscode2session: %d %s", resp.StatusCode, b)
	}
	return a
}

func TestJSCode2Session(t *testing.T) {
	e := newEnv(t, func(c *wxsim.Config) {
		m := wxsim.DefaultMerchant()
		m.Apps = append(m.Apps, wxsim.App{AppID: "wx2222222222222222", AppSecret: "secret2"})
		c.Merchants = []wxsim.Merchant{m}
	})
	openID := e.user(0)
	code := func(app string) string {
		c, err := e.sim.LoginCode(app, openID)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	q := func(pairs ...string) url.Values {
		v := url.Values{"appid": {appID}, "secret": {wxsim.DefaultAppSecret}, "grant_type": {"authorization_code"}}
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i+1] == "" {
				v.Del(pairs[i])
			} else {
				v.Set(pairs[i], pairs[i+1])
			}
		}
		return v
	}
	c1 := code(appID)
	if a := e.jscode("GET", q("js_code", c1)); a.OpenID != openID || a.SessionKey == "" || a.ErrCode != 0 {
		t.Fatalf("first use: %+v", a)
	}
	cases := []struct {
		name   string
		method string
		q      url.Values
		code   int
	}{
		{"used twice", "GET", q("js_code", c1), 40163},
		{"unknown code", "GET", q("js_code", "nosuchcode"), 40029},
		{"other app's code", "GET", q("js_code", code("wx2222222222222222")), 40029},
		{"no appid", "GET", q("appid", "", "js_code", "x"), 41002},
		{"no secret", "GET", q("secret", "", "js_code", "x"), 41004},
		{"no code", "GET", q(), 41008},
		{"bad grant_type", "GET", q("js_code", "x", "grant_type", "client_credential"), 40002},
		{"unknown appid", "GET", q("appid", "wx0000000000000000", "js_code", "x"), 40013},
		{"bad secret", "GET", q("secret", "nope", "js_code", "x"), 40125},
		{"POST", "POST", q("js_code", code(appID)), 43001},
	}
	for _, c := range cases {
		a := e.jscode(c.method, c.q)
		if a.ErrCode != c.code || a.OpenID != "" || !strings.Contains(a.ErrMsg, "rid:") {
			t.Errorf("%s: %+v", c.name, a)
		}
	}
	// The other app gets the user's other openid.
	a := e.jscode("GET", q("appid", "wx2222222222222222", "secret", "secret2", "js_code", code("wx2222222222222222")))
	if a.OpenID == "" || a.OpenID == openID {
		t.Fatalf("other app: %+v", a)
	}
	if u, _ := e.sim.User(a.OpenID); u.OpenID != openID || u.OpenIDs["wx2222222222222222"] != a.OpenID {
		t.Fatalf("user: %+v", u)
	}
	// Codes live 5 minutes.
	c2 := code(appID)
	e.clock.Advance(5 * time.Minute)
	if a := e.jscode("GET", q("js_code", c2)); a.ErrCode != 40029 {
		t.Fatalf("expired: %+v", a)
	}
	c3 := code(appID)
	e.clock.Advance(4*time.Minute + 59*time.Second)
	if a := e.jscode("GET", q("js_code", c3)); a.ErrCode != 0 {
		t.Fatalf("just in time: %+v", a)
	}
	// The control API's login-codes.
	var out struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	if st := e.ctl("POST", "/sim/v1/login-codes", map[string]string{"appid": appID, "openid": "nobody"}, &out); st != 404 || out.Error == "" {
		t.Fatalf("unknown user: %d %+v", st, out)
	}
	if st := e.ctl("POST", "/sim/v1/login-codes", map[string]string{"appid": "wx0", "openid": openID}, &out); st != 400 {
		t.Fatalf("unknown app: %d %+v", st, out)
	}
	if st := e.ctl("POST", "/sim/v1/login-codes", map[string]string{"openid": openID}, &out); st != 201 || len(out.Code) != 32 {
		t.Fatalf("default app: %d %+v", st, out)
	}
}
