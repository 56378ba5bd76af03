package wxcrypto_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/wxcrypto"
)

const vectorKey = "192006250b4c09247ec02edce69f6a2d"

func TestReqInfoKey(t *testing.T) {
	k := wxcrypto.ReqInfoKey(vectorKey)
	if string(k[:]) != "d96eb16afdd491fa1e705096edbc2205" {
		t.Fatalf("key = %s", k[:])
	}
}

func TestReqInfoVectorC1(t *testing.T) {
	const pt = "<root><refund_status><![CDATA[SUCCESS]]></refund_status></root>"
	const ct = "bDP/xixH0hFEaZusu714U7rO4wZDF5SwkOt7MIFNUaladrdy0yQefoW3LYmmUmF3r7t23yZjibKV29fZKVgeUQ=="
	if got := wxcrypto.EncryptReqInfo(vectorKey, []byte(pt)); got != ct {
		t.Fatalf("encrypt = %s", got)
	}
	got, err := wxcrypto.DecryptReqInfo(vectorKey, ct)
	if err != nil || string(got) != pt {
		t.Fatalf("decrypt = %q, %v", got, err)
	}
}

func TestReqInfoVectorC2(t *testing.T) {
	ct, err := os.ReadFile("testdata/c2_req_info.txt")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/c2_plaintext.xml")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	if hex.EncodeToString(sum[:]) != "3974e74597c1f3bab203474ef50cc715316df68a841db7935bb60298d3a39894" || len(want) != 789 {
		t.Fatal("testdata/c2_plaintext.xml is not the vector's plaintext")
	}
	got, err := wxcrypto.DecryptReqInfo(vectorKey, strings.TrimSpace(string(ct)))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("plaintext differs:\n%s", got)
	}
	if enc := wxcrypto.EncryptReqInfo(vectorKey, want); enc != strings.TrimSpace(string(ct)) {
		t.Fatal("re-encryption differs from the vector")
	}
}

func TestReqInfoErrors(t *testing.T) {
	good := wxcrypto.EncryptReqInfo(vectorKey, []byte("<root></root>"))
	raw, _ := base64.StdEncoding.DecodeString(good)
	cases := []struct {
		name, in string
		want     error
	}{
		{"not base64", "@@@", wxcrypto.ErrBase64},
		{"empty", "", wxcrypto.ErrLength},
		{"short", base64.StdEncoding.EncodeToString(raw[:15]), wxcrypto.ErrLength},
		{"wrong key", good, wxcrypto.ErrPadding},
	}
	for _, c := range cases {
		key := vectorKey
		if c.name == "wrong key" {
			key = strings.Repeat("0", 32)
		}
		if _, err := wxcrypto.DecryptReqInfo(key, c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzDecryptReqInfo(f *testing.F) {
	f.Add(wxcrypto.EncryptReqInfo(vectorKey, []byte("<root><a>1</a></root>")))
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		pt, err := wxcrypto.DecryptReqInfo(vectorKey, in)
		if err != nil {
			return
		}
		if back := wxcrypto.EncryptReqInfo(vectorKey, pt); back != in {
			// Base64 has non-canonical encodings; the bytes must agree.
			a, _ := base64.StdEncoding.DecodeString(back)
			b, _ := base64.StdEncoding.DecodeString(in)
			if string(a) != string(b) {
				t.Fatalf("round trip differs")
			}
		}
	})
}
