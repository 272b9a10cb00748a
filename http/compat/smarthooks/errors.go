package smarthooks

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

// codes is the one table that maps the domain's error codes to the
// dialect's statuses and error names (the http-errors class names that
// OneLogin's API answers with). An empty message means the error's own,
// which never holds a value; the others are fixed, such as the seed's 401.
var codes = map[envy.Code]struct {
	status  int
	name    string
	message string
}{
	envy.EBadRequest:       {http.StatusBadRequest, "BadRequestError", ""},
	envy.EUnauthenticated:  {http.StatusUnauthorized, "UnauthorizedError", "The request requires user authentication."},
	envy.EForbidden:        {http.StatusForbidden, "ForbiddenError", ""},
	envy.ENotFound:         {http.StatusNotFound, "NotFoundError", ""},
	envy.EConflict:         {http.StatusConflict, "ConflictError", ""},
	envy.EPrecondition:     {http.StatusPreconditionFailed, "PreconditionFailedError", ""},
	envy.ETooLarge:         {http.StatusRequestEntityTooLarge, "PayloadTooLargeError", ""},
	envy.EUnsupportedMedia: {http.StatusUnsupportedMediaType, "UnsupportedMediaTypeError", ""},
	envy.EInvalid:          {http.StatusUnprocessableEntity, "UnprocessableEntityError", ""},
	envy.ERateLimited:      {http.StatusTooManyRequests, "TooManyRequestsError", "Too Many Requests"},
	envy.EInternal:         {http.StatusInternalServerError, "InternalServerError", "Internal Server Error"},
	envy.EUnavailable:      {http.StatusServiceUnavailable, "ServiceUnavailableError", "Service Unavailable"},
}

// errorJSON is the seed's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// writeError answers err in the dialect's envelope. An error that is not
// a domain error is logged (store errors never hold a value) and shown as
// an internal error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := envy.AsError(err)
	if e == nil {
		slog.Default().ErrorContext(r.Context(), "smarthooks: internal error",
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
	writeJSON(w, c.status, errorJSON{StatusCode: c.status, Name: c.name, Message: msg})
}

// message is what an error says: its fields' messages when it has any
// (each names its field, never a value), else its own message.
func message(e *envy.Error) string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Msg
	}
	return strings.Join(msgs, "; ")
}

// methodNotAllowed answers a method that the path does not serve.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorJSON{
			StatusCode: http.StatusMethodNotAllowed,
			Name:       "MethodNotAllowedError",
			Message:    "The route serves only " + allow,
		})
	})
}

// writeJSON answers v as JSON, HTML characters unescaped.
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
