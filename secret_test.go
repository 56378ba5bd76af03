package wxpay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay"
)

func TestSecretNeverPrints(t *testing.T) {
	const canary = "CANARY-secret-0123456789abcdef01"
	s := wxpay.Secret(canary)
	type holder struct{ Key wxpay.Secret }
	var out []string
	for _, verb := range []string{"%v", "%s", "%q", "%+v", "%#v", "%x", "%d"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, holder{s}), fmt.Sprintf(verb, &holder{s}))
	}
	j, _ := json.Marshal(holder{s})
	out = append(out, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", s, "h", holder{s})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", s)
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, canary) {
			t.Fatalf("secret leaked: %s", o)
		}
	}
	if s.Reveal() != canary {
		t.Fatal("Reveal")
	}
}
