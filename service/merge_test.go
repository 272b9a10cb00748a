package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

func newSQLiteService(t *testing.T) (*service.Service, context.Context) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newService(t, s)
}

func as(ctx context.Context, id string, scopes string, actions ...envy.Action) context.Context {
	return service.WithCaller(ctx, &service.Caller{Token: &envy.Token{ID: id, Name: id, Permissions: []envy.Grant{{Scopes: scopes, Actions: actions}}}})
}

func set(t *testing.T, svc *service.Service, ctx context.Context, scope, name, value string, secret bool) {
	t.Helper()
	v := envy.NewSensitive(value)
	if _, _, err := svc.SetVar(ctx, scope, name, envy.VarInput{Value: &v, Secret: &secret}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestMergeVarsIfChecksWhatItWrites: the check sees the names the write is
// planned from, also when another write lands between the check and the
// write, so a refusal that depends on them can't be outrun.
func TestMergeVarsIfChecksWhatItWrites(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "app", "OTHER", "o", false)
	errTaken := errors.New("X exists")
	v := envy.NewSensitive("mine")
	calls := 0
	_, err := svc.MergeVarsIf(ctx, "app", map[string]*envy.VarInput{"X": {Value: &v}}, envy.SetOptions{}, func(exists func(string) bool) error {
		calls++
		if !exists("OTHER") {
			t.Error("the check does not see OTHER")
		}
		if exists("X") {
			return errTaken
		}
		if calls == 1 {
			// Another writer takes X after the check has passed.
			set(t, svc, ctx, "app", "X", "theirs", false)
		}
		return nil
	})
	if !errors.Is(err, errTaken) {
		t.Fatalf("err = %v, want the check's refusal once X exists", err)
	}
	if calls != 2 {
		t.Errorf("the check ran %d times, want 2 (once more after the other write)", calls)
	}
	got, err := svc.GetVar(ctx, "app", "X", true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value.Reveal() != "theirs" || got.Version != 1 {
		t.Errorf("X = %q at version %d: the refused write landed", got.Value.Reveal(), got.Version)
	}
}

// TestMergeVarsIfSeesAChangeToANameItDoesNotWrite: a check may depend on
// a var the write leaves alone (an update that keeps X as it is needs X to
// exist); another writer deleting X between the check and the write makes
// it plan and check again.
func TestMergeVarsIfSeesAChangeToANameItDoesNotWrite(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "app", "X", "x", false)
	set(t, svc, ctx, "app", "Y", "y", false)
	errGone := errors.New("X does not exist")
	v := envy.NewSensitive("y2")
	calls := 0
	_, err := svc.MergeVarsIf(ctx, "app", map[string]*envy.VarInput{"X": {}, "Y": {Value: &v}}, envy.SetOptions{}, func(exists func(string) bool) error {
		calls++
		if !exists("X") {
			return errGone
		}
		if calls == 1 {
			if _, err := svc.DeleteVar(ctx, "app", "X", envy.Cond{}); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	if !errors.Is(err, errGone) {
		t.Fatalf("err = %v, want the check's refusal once X is gone", err)
	}
	got, err := svc.GetVar(ctx, "app", "Y", true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value.Reveal() != "y" {
		t.Errorf("Y = %q: the refused write landed", got.Value.Reveal())
	}
}

// TestMergeVarsIfNeedsRead: a check's refusals tell which names exist, so
// a token that may write but not read is refused before any check runs.
func TestMergeVarsIfNeedsRead(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "app", "X", "x", false)
	v := envy.NewSensitive("v")
	writer := as(ctx, "writer", "app", envy.ActWrite)
	_, err := svc.MergeVarsIf(writer, "app", map[string]*envy.VarInput{"Y": {Value: &v}}, envy.SetOptions{}, func(func(string) bool) error {
		t.Error("the check ran for a token that may not read")
		return nil
	})
	if envy.ErrorCode(err) != envy.EForbidden {
		t.Fatalf("err = %v, want forbidden", err)
	}
}

// TestAnEmptyInputKeepsASecretForAWriterWhoMayNotReveal: an input that
// leaves every field out keeps the var as it is and takes no version, also
// for a caller who may not see the secret's value (it sent nothing that a
// skipped write could confirm).
func TestAnEmptyInputKeepsASecretForAWriterWhoMayNotReveal(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "app", "S", "s3cret", true)
	before, err := svc.GetVar(ctx, "app", "S", false)
	if err != nil {
		t.Fatal(err)
	}
	rw := as(ctx, "rw", "app", envy.ActRead, envy.ActWrite)
	info, err := svc.MergeVars(rw, "app", map[string]*envy.VarInput{"S": {}}, envy.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := svc.GetVar(ctx, "app", "S", true)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || info.Revision != before.Revision || after.Value.Reveal() != "s3cret" {
		t.Errorf("after keeping S: version %d (was %d), revision %d (was %d), value kept %v",
			after.Version, before.Version, info.Revision, before.Revision, after.Value.Reveal() == "s3cret")
	}
}
