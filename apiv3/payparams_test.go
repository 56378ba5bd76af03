package apiv3

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// The pinned paySign of wxcrypto's tests (cross-checked with openssl):
// protocol.md §13.5 over the test merchant key.
const pinnedPaySign = "cCEl9aiVcsImSFDVW4AtFsLCWmoGZiXpmecKcQ6ehnZdFd6YTQGte4UvMwgiCd0mppeRQK+dPXrqYfAPeM6erDaay+Ew2p+9wdmfvYiGHUuRsqgkboXKt9NRkuZ6jJmiZ98QrRr2gheI9aTkIOjYeBK/0DAEG3GWwTqU+e6V/0eVZ0ZWnAFpxBdhsmAcIv2c60d7p2j+GzaaCIWLfk8bShNnNiLJziL/2LyUI4yq9hD8IWlhUEZEoWnHz4ho/C8/XC1EXwfGynTY+tdrBDKfmrkScBr8BoV3i87Jx4Ao1TsIW6HxKo1bvhDV1Z+tel7LTQFaVxZsXqog5wRqPLzhiA=="

func TestMiniProgramPayParams(t *testing.T) {
	c, err := NewClient(testConfig(t),
		WithClock(func() time.Time { return time.Unix(1490840662, 0) }),
		WithNonce(func() string { return "5K8264ILTKCH16CQ2502SI8ZNMTM67VS" }))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.MiniProgramPayParams("", "wx2017033010242291fcfe0db70013231072")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(p)
	want := `{"appId":"wxd678efh567hg6787","timeStamp":"1490840662","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"RSA","paySign":"` + pinnedPaySign + `"}`
	if string(js) != want {
		t.Errorf("got  %s\nwant %s", js, want)
	}
	if err := VerifyPayParams(p, &merchantKey(t).PublicKey); err != nil {
		t.Error(err)
	}
	p2 := *p
	p2.TimeStamp = "1490840663"
	if err := VerifyPayParams(&p2, &merchantKey(t).PublicKey); err == nil {
		t.Error("altered params verify")
	}
	p2 = *p
	p2.SignType = "MD5"
	if err := VerifyPayParams(&p2, &merchantKey(t).PublicKey); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("signType MD5: %v", err)
	}
	if _, err := c.MiniProgramPayParams("", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no prepay id: %v", err)
	}
}

func TestPayParamsSignedString(t *testing.T) {
	p := &PayParams{AppID: "wxd678efh567hg6787", TimeStamp: "1490840662", NonceStr: "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
		Package: "prepay_id=wx2017033010242291fcfe0db70013231072", SignType: "RSA"}
	want := "wxd678efh567hg6787\n1490840662\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx2017033010242291fcfe0db70013231072\n"
	if got := p.SignedString(); got != want {
		t.Fatalf("SignedString() = %q, want %q", got, want)
	}
}
