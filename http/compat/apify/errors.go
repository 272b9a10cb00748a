package apify

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
)

// codeNoToken is EUnauthenticated when the request carried no token at
// all, which Apify answers with its own error type.
const codeNoToken envy.Code = "apify_token_not_provided"

// codes is the one table that maps the domain's error codes to Apify's
// statuses and error types (those the seed and Apify's API docs use). An
// empty message means the error's own, which never holds a value.
var codes = map[envy.Code]struct {
	status  int
	typ     string
	message string
}{
	envy.EBadRequest:       {http.StatusBadRequest, "invalid-input", ""},
	envy.EInvalid:          {http.StatusBadRequest, "invalid-input", ""},
	envy.ETooLarge:         {http.StatusBadRequest, "invalid-input", ""},
	envy.EUnsupportedMedia: {http.StatusBadRequest, "invalid-input", ""},
	codeNoToken:            {http.StatusUnauthorized, "token-not-provided", "Authentication token was not provided"},
	envy.EUnauthenticated:  {http.StatusUnauthorized, "user-or-token-not-found", "User was not found or authentication token is not valid"},
	envy.EForbidden:        {http.StatusForbidden, "insufficient-permissions", ""},
	envy.ENotFound:         {http.StatusNotFound, "record-not-found", ""},
	envy.EConflict:         {http.StatusConflict, "record-duplicate", ""},
	envy.EPrecondition:     {http.StatusPreconditionFailed, "precondition-failed", ""},
	envy.ERateLimited:      {http.StatusTooManyRequests, "rate-limit-exceeded", "You have exceeded the rate limit; retry after the time in the Retry-After header"},
	envy.EInternal:         {http.StatusInternalServerError, "internal-error", "Internal server error"},
	envy.EUnavailable:      {http.StatusServiceUnavailable, "service-unavailable", "The service is temporarily unavailable; retry after the time in the Retry-After header"},
}

// errorJSON is Apify's error envelope.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// writeError answers err in the dialect's envelope. An error that is not
// a domain error is logged (store errors never hold a value) and shown as
// an internal error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := envy.AsError(err)
	if e == nil {
		slog.Default().ErrorContext(r.Context(), "apify: internal error",
			"request_id", envy.CallerFrom(r.Context()).RequestID, "error", err.Error())
		e = &envy.Error{Code: envy.EInternal}
	}
	c, ok := codes[e.Code]
	if !ok {
		c = codes[envy.EInternal]
	}
	msg := c.message
	if msg == "" {
		msg = message(e)
	}
	if c.status == http.StatusTooManyRequests || c.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(e.RetryAfter.Seconds()))), 10))
	}
	writeJSON(w, c.status, errorJSON{errorBody{Type: c.typ, Message: msg}})
}

// message is what an error says: "Invalid input: " and its fields'
// messages when it has any (each names its field, never a value), else its
// own message.
func message(e *envy.Error) string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Msg
	}
	return "Invalid input: " + strings.Join(msgs, "; ")
}

// methodNotAllowed answers a method that the path does not serve, as
// Apify's docs show.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorJSON{errorBody{
			Type:    "method-not-allowed",
			Message: "This API endpoint can only be accessed using the following HTTP methods: " + allow,
		}})
	})
}

// writeJSON answers v as JSON, HTML characters unescaped: values are
// returned as they were written.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only a programming error gets here: the reply types always encode
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
