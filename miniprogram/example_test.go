package miniprogram_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/wxpay-go/wxpay/miniprogram"
)

// This example fakes jscode2session with an httptest.Server: "good-code"
// logs in, anything else gets errcode 40029.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("js_code") != "good-code" {
			fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code"}`)
			return
		}
		fmt.Fprint(w, `{"openid":"oUser123","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"uUnion456"}`)
	}))
	defer srv.Close()

	c, err := miniprogram.NewClient("wx1234567890abcdef", "app-secret",
		miniprogram.WithBaseURL(srv.URL),
		miniprogram.WithHTTPClient(srv.Client()))
	if err != nil {
		fmt.Println(err)
		return
	}

	sess, err := c.Code2Session(context.Background(), "good-code")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("openid:", sess.OpenID)
	fmt.Println("unionid:", sess.UnionID)
	fmt.Println("session key:", sess.SessionKey)
	fmt.Println("revealed key length:", len(sess.SessionKey.Reveal()))

	_, err = c.Code2Session(context.Background(), "stale-code")
	fmt.Println(err)
	if errors.Is(err, miniprogram.ErrInvalidCode) {
		fmt.Println("ask the mini program to call wx.login again")
	}
	// Output:
	// openid: oUser123
	// unionid: uUnion456
	// session key: REDACTED
	// revealed key length: 24
	// miniprogram: jscode2session errcode 40029: invalid code
	// ask the mini program to call wx.login again
}
