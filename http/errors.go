package http

import (
	"context"
	"errors"
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// titles is the one table of the native API's problem titles; the status
// of each code is wire.Status, and the problem type is the code itself.
var titles = map[envy.Code]string{
	envy.EBadRequest:       "Bad request",
	envy.EUnauthenticated:  "Unauthenticated",
	envy.EForbidden:        "Forbidden",
	envy.ENotFound:         "Not found",
	envy.EConflict:         "Conflict",
	envy.EPrecondition:     "Precondition failed",
	envy.ETooLarge:         "Payload too large",
	envy.EUnsupportedMedia: "Unsupported media type",
	envy.EInvalid:          "Validation error",
	envy.ERateLimited:      "Rate limited",
	envy.EInternal:         "Internal error",
	envy.EUnavailable:      "Service unavailable",
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail"`
	Errors []envy.FieldError `json:"errors,omitempty"`
}

// StatusClientClosed is the status of a request whose client went away
// before it was answered (nginx's 499, "client closed request"): nobody
// reads the reply, and it is no error of the server's.
const StatusClientClosed = 499

// ClientGone reports whether err ended r because its client went away:
// the request's context is done and err is that context's end. A request
// so ended is logged at debug level with StatusClientClosed and counted
// apart, never as an internal error.
func ClientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// writeError answers err as a problem. A non-domain error is logged (store
// errors never hold a value) and shown as "Internal error"; a request
// whose client went away is answered StatusClientClosed, without a log
// line or an error count of its own.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ClientGone(r, err) {
		w.WriteHeader(StatusClientClosed)
		return
	}
	e := envy.AsError(err)
	if e == nil {
		s.log.ErrorContext(r.Context(), "http: internal error",
			"request_id", service.CallerFrom(r.Context()).RequestID,
			"route", infoFrom(r.Context()).route,
			"error", err.Error())
		e = &envy.Error{Code: envy.EInternal, Message: envy.ErrorMessage(err)}
	}
	title, ok := titles[e.Code]
	if !ok {
		title = titles[envy.EInternal]
	}
	status := wire.Status(e.Code)
	switch e.Code {
	case envy.EInternal, envy.EUnavailable:
		s.metrics.storeErrors.WithLabelValues(string(e.Code)).Inc()
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", wire.RetryAfter(e.RetryAfter))
	}
	typ := string(e.Code)
	if !ok {
		typ = string(envy.EInternal)
	}
	s.writeProblem(w, r, problem{
		Type:   typ,
		Title:  title,
		Status: status,
		Detail: e.Message,
		Errors: e.Fields,
	})
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	h := w.Header()
	h.Del("ETag")
	h.Set("Cache-Control", "no-store")
	wire.WriteJSON(w, wire.ContentTypeProblem, p.Status, p)
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	wire.WriteJSON(w, wire.ContentTypeJSON, status, v)
}
