package http

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
)

// nativeWords are the native API's words for refused bodies: the
// defaults, but a body that is not an object is a type error like any
// other, and an unknown field is only named by its location.
var nativeWords = wire.Words{
	NotObject: wire.TypeError("body", "object"),
	Unknown: func(loc string, names []string) error {
		bad := make([]envy.FieldError, len(names))
		for i, name := range names {
			msg := "unknown field"
			if name == "masked_value" {
				msg = "masked_value is read-only"
			}
			bad[i] = envy.Field(loc+"."+name, "unknown_field", "%s", msg)
		}
		return envy.Invalid(bad...)
	},
}

// Query parameters.

// queryLimit reads ?limit=, 1–1000, default 100.
func queryLimit(r *http.Request) (int, error) { return queryLimitOr(r, 100) }

// queryLimitOr is queryLimit with the default def.
func queryLimitOr(r *http.Request, def int64) (int, error) {
	n, ok := wire.Int(r.URL.Query().Get("limit"), def, 1, 1000)
	if !ok {
		return 0, envy.Invalid(envy.Field("query.limit", "out_of_range", "limit must be an integer from 1 to 1000"))
	}
	return int(n), nil
}

// queryBool reads a true|false parameter, false when absent.
func queryBool(r *http.Request, name string) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, envy.Invalid(envy.Field("query."+name, "invalid", "%s must be true or false", name))
}

// queryInt reads a positive integer parameter, 0 when absent.
func queryInt(r *http.Request, name string) (int64, error) {
	n, ok := wire.Int(r.URL.Query().Get(name), 0, 1, math.MaxInt64)
	if !ok {
		return 0, envy.Invalid(envy.Field("query."+name, "invalid", "%s must be a positive integer", name))
	}
	return n, nil
}

// queryTime reads an RFC 3339 parameter, zero when absent.
func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, envy.Invalid(envy.Field("query."+name, "invalid", "%s must be an RFC 3339 time", name))
	}
	return t, nil
}

// queryEnum reads a parameter that takes one of values; the first is the
// default.
func queryEnum(r *http.Request, name string, values ...string) (string, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return values[0], nil
	}
	if slices.Contains(values, v) {
		return v, nil
	}
	return "", envy.Invalid(envy.Field("query."+name, "invalid", "%s must be one of %s", name, strings.Join(values, ", ")))
}

// cond reads If-Match: "<revision>" (quotes optional; * asks for no
// revision) into a write precondition.
func cond(r *http.Request) (envy.Cond, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return envy.Cond{}, nil
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, ok := wire.Int(v, 0, 1, math.MaxInt64)
	if !ok || n == 0 {
		return envy.Cond{}, envy.Invalid(envy.Field("header.If-Match", "invalid", `If-Match must be a revision such as "42"`))
	}
	return envy.Cond{IfRevision: n}, nil
}
