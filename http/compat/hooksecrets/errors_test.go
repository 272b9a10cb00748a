package hooksecrets

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/envy-dev/envy"
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
