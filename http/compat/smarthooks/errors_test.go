package smarthooks

import (
	"net/http"
	"testing"
)

// The names OneLogin's API (http-errors) gives each status envy answers
// with, and one that shows the capitalizing and the kept "Error" suffix.
func TestClassNames(t *testing.T) {
	for status, want := range map[int]string{
		http.StatusBadRequest:            "BadRequestError",
		http.StatusUnauthorized:          "UnauthorizedError",
		http.StatusForbidden:             "ForbiddenError",
		http.StatusNotFound:              "NotFoundError",
		http.StatusMethodNotAllowed:      "MethodNotAllowedError",
		http.StatusConflict:              "ConflictError",
		http.StatusPreconditionFailed:    "PreconditionFailedError",
		http.StatusRequestEntityTooLarge: "PayloadTooLargeError",
		http.StatusUnsupportedMediaType:  "UnsupportedMediaTypeError",
		http.StatusUnprocessableEntity:   "UnprocessableEntityError",
		http.StatusTooManyRequests:       "TooManyRequestsError",
		http.StatusInternalServerError:   "InternalServerError",
		http.StatusServiceUnavailable:    "ServiceUnavailableError",
		http.StatusTeapot:                "ImATeapotError",
		http.StatusNonAuthoritativeInfo:  "NonAuthoritativeInformationError",
	} {
		if got := className(status); got != want {
			t.Errorf("className(%d) = %q, want %q", status, got, want)
		}
	}
}
