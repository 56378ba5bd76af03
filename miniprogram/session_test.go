package miniprogram

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSessionKeyRedactedByFmt(t *testing.T) {
	k := SessionKey(canaryKey)
	tests := []struct {
		format string
		want   string
	}{
		{"%v", "REDACTED"},
		{"%s", "REDACTED"},
		{"%+v", "REDACTED"},
		{"%#v", "REDACTED"},
		{"%q", `"REDACTED"`},
		{"%#q", "`REDACTED`"},
		{"%x", "REDACTED"},
		{"%X", "REDACTED"},
		{"%d", "REDACTED"},
		{"%T", "miniprogram.SessionKey"},
		{"%10.3s|", "       RED|"},
		{"%-10v|", "REDACTED  |"},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf(tt.format, k); got != tt.want {
			t.Errorf("Sprintf(%q) = %q, want %q", tt.format, got, tt.want)
		}
		if got := fmt.Sprintf(tt.format, &k); strings.Contains(got, canaryKey) {
			t.Errorf("Sprintf(%q, &k) = %q", tt.format, got)
		}
	}
	if k.String() != "REDACTED" || k.GoString() != "REDACTED" {
		t.Errorf("String/GoString = %q/%q", k.String(), k.GoString())
	}
	if k.Reveal() != canaryKey {
		t.Errorf("Reveal() = %q", k.Reveal())
	}
	if got := fmt.Sprint(k) + fmt.Sprintln(k); strings.Contains(got, canaryKey) {
		t.Errorf("Sprint leaks: %q", got)
	}
}

func TestSessionRedactedByFmt(t *testing.T) {
	s := Session{OpenID: "oABC", UnionID: "uXYZ", SessionKey: canaryKey}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, arg := range []any{s, &s, []Session{s}, map[string]Session{"a": s}} {
			got := fmt.Sprintf(format, arg)
			if strings.Contains(got, canaryKey) || strings.Contains(got, fmt.Sprintf("%x", canaryKey)) {
				t.Errorf("Sprintf(%q, %T) = %s", format, arg, got)
			}
		}
	}
	if got, want := fmt.Sprintf("%+v", s), "{OpenID:oABC UnionID:uXYZ SessionKey:REDACTED}"; got != want {
		t.Errorf("%%+v = %q, want %q", got, want)
	}
}

func TestSessionKeyRedactedBySlog(t *testing.T) {
	s := Session{OpenID: "oABC", SessionKey: canaryKey}
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(newHandler(&buf))
			l.Info("login", "key", s.SessionKey, "session", s, "ptr", &s, slog.Any("any", s.SessionKey))
			l.With("key", s.SessionKey).Info("with")
			l.Info("group", slog.Group("g", "key", s.SessionKey))
			out := buf.String()
			if strings.Contains(out, canaryKey) {
				t.Errorf("slog output leaks the key: %s", out)
			}
			if !strings.Contains(out, "REDACTED") {
				t.Errorf("slog output lacks REDACTED: %s", out)
			}
		})
	}
}

func TestSessionKeyRedactedByMarshal(t *testing.T) {
	s := Session{OpenID: "oABC", UnionID: "uXYZ", SessionKey: canaryKey}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"openid":"oABC","unionid":"uXYZ","session_key":"REDACTED"}`; string(got) != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	text, err := SessionKey(canaryKey).MarshalText()
	if err != nil || string(text) != "REDACTED" {
		t.Errorf("MarshalText = %q, %v", text, err)
	}
	// Without a unionid the field is left out.
	got, _ = json.Marshal(Session{OpenID: "o", SessionKey: "k"})
	if want := `{"openid":"o","session_key":"REDACTED"}`; string(got) != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
}
