package wxpay

import (
	"fmt"
	"log/slog"
)

// Secret holds a key (an API key, an APIv3 key, an AppSecret) so that it
// cannot be printed by accident: fmt with any verb, slog, JSON and text
// marshalling all show REDACTED. Reveal returns the value for the one place
// that needs it, the signer.
type Secret string

const redacted = "REDACTED"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String returns REDACTED.
func (s Secret) String() string { return redacted }

// GoString returns REDACTED, for %#v.
func (s Secret) GoString() string { return redacted }

// Format prints REDACTED for every verb.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }

// LogValue returns REDACTED for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns REDACTED, so JSON, TOML and the like never see the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
