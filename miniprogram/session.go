package miniprogram

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted replaces every secret the package prints.
const redacted = "REDACTED"

// Session is what WeChat returns for a valid js_code: the user's identity in
// this mini program and the key for decrypting data the mini program sends
// from wx.getUserInfo, wx.getPhoneNumber and similar APIs.
type Session struct {
	// OpenID identifies the user within this mini program. Always set.
	OpenID string `json:"openid"`
	// UnionID identifies the user across the apps of one Open Platform
	// account; empty unless the mini program is bound to one.
	UnionID string `json:"unionid,omitempty"`
	// SessionKey is the user's current session key. Always set; it prints,
	// logs and marshals as REDACTED. Never send it to the mini program.
	SessionKey SessionKey `json:"session_key"`
}

// SessionKey is a WeChat session_key (base64 of 16 bytes). Keep it on the
// server: fmt (every verb), slog, encoding/json and encoding.TextMarshaler
// all see REDACTED; only Reveal returns the value.
//
// Two uses bypass these methods, so avoid them: a SessionKey as a map key
// (encoding/json writes string-kind keys verbatim) and a SessionKey in an
// unexported struct field printed with fmt (fmt cannot call its methods).
type SessionKey string

// Reveal returns the session key itself. Use it only on the server, to
// decrypt user data (encryptedData/iv) or check its signature; never log it,
// store it where the mini program can read it, or send it to the client.
func (k SessionKey) Reveal() string { return string(k) }

// String returns REDACTED.
func (SessionKey) String() string { return redacted }

// GoString returns REDACTED.
func (SessionKey) GoString() string { return redacted }

// Format prints REDACTED whatever the verb (%q and %#q quote it), honouring
// width and flags, so no fmt verb can reveal the key.
func (SessionKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb) }

// LogValue returns REDACTED for log/slog.
func (SessionKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "REDACTED".
func (SessionKey) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(redacted)), nil }

// MarshalText returns REDACTED.
func (SessionKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// formatRedacted writes REDACTED for any verb: %q stays a quoted string,
// every other verb (%v, %s, %x, %d, ...) prints it as %s would.
func formatRedacted(f fmt.State, verb rune) {
	if verb != 'q' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), redacted)
}
