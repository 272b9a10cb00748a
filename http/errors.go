package http

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
)

// codes is the one table that maps the domain's error codes to the native
// API's statuses and problem titles. The problem type is the code itself.
var codes = map[envy.Code]struct {
	status int
	title  string
}{
	envy.EBadRequest:       {http.StatusBadRequest, "Bad request"},
	envy.EUnauthenticated:  {http.StatusUnauthorized, "Unauthenticated"},
	envy.EForbidden:        {http.StatusForbidden, "Forbidden"},
	envy.ENotFound:         {http.StatusNotFound, "Not found"},
	envy.EConflict:         {http.StatusConflict, "Conflict"},
	envy.EPrecondition:     {http.StatusPreconditionFailed, "Precondition failed"},
	envy.ETooLarge:         {http.StatusRequestEntityTooLarge, "Payload too large"},
	envy.EUnsupportedMedia: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	envy.EInvalid:          {http.StatusUnprocessableEntity, "Validation error"},
	envy.ERateLimited:      {http.StatusTooManyRequests, "Rate limited"},
	envy.EInternal:         {http.StatusInternalServerError, "Internal error"},
	envy.EUnavailable:      {http.StatusServiceUnavailable, "Service unavailable"},
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail"`
	Errors []envy.FieldError `json:"errors,omitempty"`
}

// writeError answers err as a problem. A non-domain error is logged (store
// errors never hold a value) and shown as "Internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := envy.AsError(err)
	if e == nil {
		s.log.ErrorContext(r.Context(), "http: internal error",
			"request_id", envy.CallerFrom(r.Context()).RequestID,
			"route", infoFrom(r.Context()).route,
			"error", err.Error())
		e = &envy.Error{Code: envy.EInternal, Message: envy.ErrorMessage(err)}
	}
	c, ok := codes[e.Code]
	if !ok {
		c = codes[envy.EInternal]
	}
	switch e.Code {
	case envy.EInternal, envy.EUnavailable:
		s.metrics.storeErrors.WithLabelValues(string(e.Code)).Inc()
	}
	if c.status == http.StatusTooManyRequests || c.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", wire.RetryAfter(e.RetryAfter))
	}
	typ := string(e.Code)
	if !ok {
		typ = string(envy.EInternal)
	}
	s.writeProblem(w, r, problem{
		Type:   typ,
		Title:  c.title,
		Status: c.status,
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
