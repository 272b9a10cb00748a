package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The server's reply to an over-long value, as the native API sends it.
const tooLongProblem = `{"type":"validation_error","title":"Validation error","status":422,` +
	`"detail":"the request is not valid","errors":[{"loc":"body.value","msg":"value is longer than 65536 characters","type":"too_long"}]}`

func TestErrorsAreParsedFromProblemJSON(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      map[string]string
		wantType    string
		wantText    string
	}{
		{
			name: "a validation error names the field", status: 422,
			contentType: "application/problem+json", body: tooLongProblem,
			wantType: TypeValidation,
			wantText: "validation_error: body.value: value is longer than 65536 characters",
		},
		{
			name: "a problem without field errors shows its detail", status: 404,
			contentType: "application/problem+json",
			body:        `{"type":"not_found","title":"Not found","status":404,"detail":"scope acme/web not found"}`,
			wantType:    TypeNotFound, wantText: "not_found: scope acme/web not found",
		},
		{
			name: "a rate limit carries Retry-After", status: 429,
			contentType: "application/problem+json",
			body:        `{"type":"rate_limited","title":"Rate limited","status":429,"detail":"too many requests"}`,
			header:      map[string]string{"Retry-After": "3"},
			wantType:    TypeRateLimited, wantText: "rate_limited: too many requests",
		},
		{
			name: "a proxy's HTML page is not shown, only its status", status: 502,
			contentType: "text/html", body: "<html>Bad gateway\nsecret-ish page</html>",
			wantType: TypeInternal, wantText: "internal: 502 Bad Gateway",
		},
		{
			name: "a detail over several lines is kept to one", status: 409,
			contentType: "application/problem+json",
			body:        `{"type":"conflict","title":"Conflict","status":409,"detail":"scope is inherited by\n  acme/web/prod"}`,
			wantType:    TypeConflict, wantText: "conflict: scope is inherited by acme/web/prod",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("Authorization"); got != "Bearer envy_test" {
					t.Errorf("Authorization = %q", got)
				}
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Set("X-Request-Id", "req-1")
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()

			c := New(srv.URL, "envy_test")
			_, err := c.SetVar(context.Background(), "acme/web", "API_KEY", VarInput{Value: String("x")})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *Error", err, err)
			}
			if e.Status != tc.status || e.Type != tc.wantType || e.RequestID != "req-1" {
				t.Errorf("got status %d type %q request id %q", e.Status, e.Type, e.RequestID)
			}
			if got := err.Error(); got != tc.wantText {
				t.Errorf("Error() = %q, want %q", got, tc.wantText)
			}
			if !IsType(err, tc.wantType) {
				t.Errorf("IsType(err, %q) = false", tc.wantType)
			}
			if tc.header["Retry-After"] == "3" && e.RetryAfter != 3*time.Second {
				t.Errorf("RetryAfter = %v", e.RetryAfter)
			}
		})
	}
}

func TestValidationErrorKeepsEveryField(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(422)
		_, _ = w.Write([]byte(`{"type":"validation_error","title":"Validation error","status":422,"detail":"","errors":[` +
			`{"loc":"body.A.value","msg":"value contains NUL","type":"invalid"},{"loc":"body.1X","msg":"invalid name","type":"pattern"}]}`))
	}))
	defer srv.Close()
	_, err := New(srv.URL, "t").MergeVars(context.Background(), "acme", map[string]*VarInput{"A": Value("x")})
	var e *Error
	if !errors.As(err, &e) || len(e.Errors) != 2 || e.Errors[1] != (FieldError{"body.1X", "invalid name", "pattern"}) {
		t.Fatalf("got %#v", err)
	}
	if want := "validation_error: body.A.value: value contains NUL; body.1X: invalid name"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestUnreachableServerNamesTheAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	_, err = New(addr, "t").ListScopes(context.Background(), "", "", 0)
	var ne *NetError
	if !errors.As(err, &ne) {
		t.Fatalf("error %T %v, want *NetError", err, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "cannot reach envy at "+addr+": ") || strings.Contains(msg, "/v1/") {
		t.Errorf("error %q: want the address and not the URL", msg)
	}
}

func TestNewNormalizesTheAddress(t *testing.T) {
	for in, want := range map[string]string{
		"":                       DefaultAddr,
		"127.0.0.1:9000":         "http://127.0.0.1:9000",
		"https://envy.example/":  "https://envy.example",
		" http://localhost:8750": "http://localhost:8750",
	} {
		if got := New(in, "").Addr(); got != want {
			t.Errorf("New(%q).Addr() = %q, want %q", in, got, want)
		}
	}
}
