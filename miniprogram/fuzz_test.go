package miniprogram

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeResponse feeds arbitrary bodies to decodeResponse. Errors are
// fine; a panic, a session without openid or session_key, an error of an
// unknown category or an error that quotes the session_key is a bug.
func FuzzDecodeResponse(f *testing.F) {
	for _, seed := range []string{
		`{"openid":"o","session_key":"k"}`,
		`{"openid":"o","session_key":"k","unionid":"u","errcode":0,"errmsg":"ok"}`,
		`{"errcode":40029,"errmsg":"invalid code"}`,
		`{"errcode":-1}`,
		`{"errcode":"1"}`,
		`{"errcode":1e999}`,
		`{"openid":null,"session_key":"k"}`,
		`{"OPENID":"o","Session_Key":"k"}`,
		`{"openid":"o","session_key":"\ud800"}`,
		`{"openid":"o","session_key":"k"}{}`,
		`[]`, `null`, `""`, ``, ` `, `{`, `{"openid":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sess, err := decodeResponse(body)
		if err == nil {
			if sess == nil || sess.OpenID == "" || sess.SessionKey.Reveal() == "" {
				t.Fatalf("success without identity: %#v", sess)
			}
			return
		}
		if sess != nil {
			t.Fatalf("both a session and an error: %v", err)
		}
		var apiErr *Error
		switch {
		case errors.As(err, &apiErr):
			if apiErr.Code == 0 {
				t.Fatalf("*Error with code 0: %v", err)
			}
			if len(apiErr.Msg) > maxMsgBytes+len("…") {
				t.Fatalf("Msg of %d bytes", len(apiErr.Msg))
			}
			if !utf8.ValidString(apiErr.Msg) {
				t.Fatalf("Msg not UTF-8: %q", apiErr.Msg)
			}
		case errors.Is(err, ErrBadResponse):
			// A bad response's text is one of a few fixed reasons: it never
			// quotes the body (which may hold a session_key).
			reason := strings.TrimPrefix(err.Error(), "miniprogram: jscode2session: bad response: ")
			if len(reason) > 64 {
				t.Fatalf("reason too long to be fixed text: %q", reason)
			}
			if len(body) >= 8 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("error quotes the body: %q", err)
			}
		default:
			t.Fatalf("error of no known category: %v", err)
		}
	})
}
