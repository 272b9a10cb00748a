package envy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code is a domain error code. Each dialect maps codes to its own status
// codes and envelope in exactly one table.
type Code string

// The error codes. Their string forms are the native API's problem types.
const (
	EBadRequest       Code = "bad_request"
	EUnauthenticated  Code = "unauthenticated"
	EForbidden        Code = "forbidden"
	ENotFound         Code = "not_found"
	EConflict         Code = "conflict"
	EPrecondition     Code = "precondition_failed"
	ETooLarge         Code = "payload_too_large"
	EUnsupportedMedia Code = "unsupported_media_type"
	EInvalid          Code = "validation_error"
	ERateLimited      Code = "rate_limited"
	EInternal         Code = "internal"
	EUnavailable      Code = "unavailable"
)

// FieldError names one bad field of a request: where it is (loc, such as
// "body.value" or "path.name"), why it is wrong (msg) and a machine-readable
// kind (typ, such as "too_long"). It never holds a value.
type FieldError struct {
	Loc  string `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// Error is the one error type of the domain. Message is safe to show to the
// caller: it never holds a value.
type Error struct {
	Code       Code
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration // for ERateLimited and EUnavailable
	// Names marks a message that names what was refused (a reference the
	// caller may not follow), so that an API whose answer to the code is
	// a fixed message goes on with it.
	Names bool
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s (%s: %s)", e.Code, e.Message, e.Fields[0].Loc, e.Fields[0].Msg)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
// Never format a value into it.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error for the given fields.
func Invalid(fields ...FieldError) *Error {
	msg := "the request has invalid fields"
	if len(fields) == 1 {
		msg = fields[0].Loc + ": " + fields[0].Msg
	}
	return &Error{Code: EInvalid, Message: msg, Fields: fields}
}

// Field is a short way to build a FieldError.
func Field(loc, typ, format string, args ...any) FieldError {
	return FieldError{Loc: loc, Type: typ, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of a domain error, EInternal for any other
// error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of a domain error, and "Internal error"
// for any other error, whose text may not be shown to callers.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error"
}

// ErrorFields returns the field errors of a domain error.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// AsError returns err as a domain *Error, or nil when it is not one.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// InheritedError is a Store's refusal to delete a scope that other scopes
// inherit. By names some of them (at most MaxInheritorsNamed), in path
// order, for the service to name those the caller may see; its code is
// EConflict, and its message as a domain error names none of them.
type InheritedError struct{ By []string }

// MaxInheritorsNamed bounds InheritedError.By.
const MaxInheritorsNamed = 20

func (e *InheritedError) Error() string {
	return "conflict: scope is inherited by " + strings.Join(e.By, ", ")
}

func (e *InheritedError) Unwrap() error {
	return &Error{Code: EConflict, Message: "scope is inherited by another scope"}
}
