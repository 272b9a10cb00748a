package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The problem types of the native API (Error.Type).
const (
	TypeBadRequest       = "bad_request"
	TypeUnauthenticated  = "unauthenticated"
	TypeForbidden        = "forbidden"
	TypeNotFound         = "not_found"
	TypeConflict         = "conflict"
	TypePrecondition     = "precondition_failed"
	TypeTooLarge         = "payload_too_large"
	TypeUnsupportedMedia = "unsupported_media_type"
	TypeValidation       = "validation_error"
	TypeRateLimited      = "rate_limited"
	TypeInternal         = "internal"
	TypeUnavailable      = "unavailable"
)

// Error is an error reply of the server: an RFC 9457 problem. The server
// never puts a value in one, so it is safe to print.
type Error struct {
	Status int          `json:"status"`
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors,omitempty"`

	RequestID  string        `json:"-"` // the X-Request-Id of the reply
	RetryAfter time.Duration `json:"-"` // from Retry-After on 429 and 503
}

// FieldError is one bad field of a validation error.
type FieldError struct {
	Loc  string `json:"loc"`  // such as "body.value" or "path.name"
	Msg  string `json:"msg"`  // why it is wrong
	Type string `json:"type"` // such as "too_long"
}

// Error returns one line: the type, then the field errors or the detail,
// such as "validation_error: body.value: value is longer than 65536
// characters".
func (e *Error) Error() string {
	typ := e.Type
	if typ == "" {
		typ = strconv.Itoa(e.Status)
	}
	var b strings.Builder
	b.WriteString(typ)
	switch {
	case len(e.Errors) > 0:
		for i, fe := range e.Errors {
			if i == 0 {
				b.WriteString(": ")
			} else {
				b.WriteString("; ")
			}
			if fe.Loc != "" {
				b.WriteString(fe.Loc)
				b.WriteString(": ")
			}
			b.WriteString(fe.Msg)
		}
	case e.Detail != "":
		b.WriteString(": ")
		b.WriteString(e.Detail)
	case e.Title != "":
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	return oneLine(b.String())
}

// oneLine keeps an error to one line, whatever a server put in it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// IsType reports whether err is an *Error of the given problem type, such
// as TypeNotFound.
func IsType(err error, typ string) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == typ
}

// IsNotFound reports whether err is a 404 not_found: the scope, var or
// token does not exist, or the token may not read it.
func IsNotFound(err error) bool { return IsType(err, TypeNotFound) }

// parseError turns a non-2xx reply into an *Error. A body that is not a
// problem (a proxy's HTML page, say) is not shown: only its status.
func parseError(resp *http.Response, body []byte) *Error {
	e := &Error{}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "application/problem+json" || ct == "application/json" {
		if err := json.Unmarshal(body, e); err != nil {
			*e = Error{}
		}
	}
	if e.Status == 0 {
		e.Status = resp.StatusCode
	}
	if e.Type == "" {
		e.Type = typeOfStatus(resp.StatusCode)
		if e.Detail == "" && e.Title == "" {
			e.Title = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
	}
	e.RequestID = resp.Header.Get("X-Request-Id")
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = time.Until(t)
		}
	}
	return e
}

// typeOfStatus names a status that came without a problem body, so that
// IsType works for replies from proxies too.
func typeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return TypeBadRequest
	case http.StatusUnauthorized:
		return TypeUnauthenticated
	case http.StatusForbidden:
		return TypeForbidden
	case http.StatusNotFound:
		return TypeNotFound
	case http.StatusConflict:
		return TypeConflict
	case http.StatusPreconditionFailed:
		return TypePrecondition
	case http.StatusRequestEntityTooLarge:
		return TypeTooLarge
	case http.StatusUnsupportedMediaType:
		return TypeUnsupportedMedia
	case http.StatusUnprocessableEntity:
		return TypeValidation
	case http.StatusTooManyRequests:
		return TypeRateLimited
	case http.StatusServiceUnavailable:
		return TypeUnavailable
	}
	if status >= 500 {
		return TypeInternal
	}
	return ""
}
