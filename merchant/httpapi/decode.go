package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/wxpay-go/wxpay/merchant"
)

// decodeJSON reads the body of r, at most limit bytes, into v. It refuses
// a content type other than application/json (415), a body over the limit
// (413), malformed JSON, unknown fields, a value of the wrong type and
// anything after the first value (400), each with a message that says
// which.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return merchant.Errorf(EMEDIATYPE, "the body must be JSON, sent with Content-Type: application/json")
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err, limit)
		}
		return merchant.Errorf(merchant.EINVALID, "the body must hold a single JSON object")
	}
	return nil
}

// jsonError turns a decoding error into an *merchant.Error whose message
// says what is wrong, without echoing the body.
func jsonError(err error, limit int64) error {
	var (
		mbe  *http.MaxBytesError
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		code = merchant.EINVALID
		msg  string
	)
	switch {
	case errors.As(err, &mbe):
		code, msg = ETOOLARGE, fmt.Sprintf("the body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		msg = "the body is empty: a JSON object is required"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "the body is truncated JSON"
	case errors.As(err, &syn):
		msg = fmt.Sprintf("the body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			msg = fmt.Sprintf("field %q must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		} else {
			msg = "the body must be a JSON object"
		}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 66 {
			name = strings.ToValidUTF8(name[:64], "") + "…"
		}
		msg = "unknown field " + name
	default:
		msg = "the body is not valid JSON"
	}
	return merchant.Errorf(code, "%s", msg)
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "integer"
	case "float32", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "bool":
		return "boolean"
	}
	return k
}
