package hooksecrets

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// TestAWriteThatKeptMeetingOthersIsNotANameThatExists: the service's
// ErrStale is a conflict, which the table answers as "secret_exists";
// the dialect says what happened instead.
func TestAWriteThatKeptMeetingOthersIsNotANameThatExists(t *testing.T) {
	e := envy.AsError(concurrent(fmt.Errorf("write: %w", envy.ErrStale)))
	if e == nil || e.Code != codeConcurrentUpdate {
		t.Fatalf("got %v, want code %s", e, codeConcurrentUpdate)
	}
	if s, typ := errorTable.Status[e.Code], errorTable.Types[e.Code]; s != http.StatusConflict || typ != "concurrent_update" {
		t.Errorf("answered as %d %q", s, typ)
	}
	other := errors.New("other")
	if concurrent(other) != other {
		t.Error("another error is changed")
	}
}

// TestARefusedReferenceIsNamedAfterTheFixedMessage: the dialect's reads
// never show a value, so no read of it resolves one; but a 403 that names
// what it refused (a reference) says so after Auth0's fixed message, in
// Auth0's envelope.
func TestARefusedReferenceIsNamedAfterTheFixedMessage(t *testing.T) {
	e := envy.RefEdge{From: "URL", Ref: envy.Ref{Scope: "shared", Name: "HOST"}}.Refused("read")
	c := dialect.Entry{Status: 403, Type: errorTable.Types[envy.EForbidden], Message: errorTable.Messages[envy.EForbidden]}
	got := envelope(c, e).(errorJSON)
	want := "Insufficient scope: the token's permissions on this hook do not allow this request. URL refers to shared:HOST, which this token may not read"
	if got.Message != want || got.ErrorCode != "insufficient_scope" || got.StatusCode != 403 {
		t.Errorf("got %+v, want message %q", got, want)
	}
	plain := envelope(c, envy.Errorf(envy.EForbidden, "scope hooks/h1: this token may not write")).(errorJSON)
	if plain.Message != errorTable.Messages[envy.EForbidden] {
		t.Errorf("another 403 says %q, want Auth0's fixed message alone", plain.Message)
	}
}
