package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
)

// putVars writes vars to scope, MaxBulkKeys at a time.
func putVars(t *testing.T, svc *service.Service, ctx context.Context, scope string, vars map[string]string) {
	t.Helper()
	in := map[string]*envy.VarInput{}
	flush := func() {
		if _, err := svc.MergeVars(ctx, scope, in, envy.SetOptions{}); err != nil {
			t.Fatal(err)
		}
		in = map[string]*envy.VarInput{}
	}
	for k, v := range vars {
		s := envy.NewSensitive(v)
		in[k] = &envy.VarInput{Value: &s}
		if len(in) == envy.MaxBulkKeys {
			flush()
		}
	}
	if len(in) > 0 {
		flush()
	}
}

// TestReadsOfAWideReferenceGraphAreLinear: every read that masks the
// vars a secret or an unreadable scope spreads to, or says why a var's
// references may not be followed, works it out in one pass over the
// reference graph, not a walk from each var: n vars A_i = ${H}, H
// referring to n vars B_j, cost n² that way (4,000 of each: 8 to 30 s
// a read). The work is counted in references followed (envy.SetRefStepHook).
func TestReadsOfAWideReferenceGraphAreLinear(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	const n = 300
	vars := map[string]string{}
	var h strings.Builder
	for j := range n {
		vars[fmt.Sprintf("B%04d", j)] = "b"
		fmt.Fprintf(&h, "${B%04d}", j)
	}
	putVars(t, svc, ctx, "wide", vars)
	vars = map[string]string{"H": h.String()}
	for i := range n {
		vars[fmt.Sprintf("A%04d", i)] = "${H}"
	}
	putVars(t, svc, ctx, "wide", vars)

	var steps atomic.Int64
	envy.SetRefStepHook(func() { steps.Add(1) })
	t.Cleanup(func() { envy.SetRefStepHook(nil) })
	encodeEnv := func(b []byte, env envy.Env) ([]byte, error) { return b, nil }
	encodeVars := func(b []byte, vl envy.VarList) ([]byte, error) { return b, nil }
	reads := []struct {
		name string
		read func() error
	}{
		{"Env", func() error { _, err := svc.Env(ctx, "wide"); return err }},
		{"EnvReplyRaw", func() error { _, err := svc.EnvReplyRaw(ctx, "wide", "t", true, nil, encodeEnv); return err }},
		{"ListVars", func() error { _, err := svc.ListVars(ctx, "wide", false); return err }},
		{"VarListReply", func() error { _, err := svc.VarListReply(ctx, "wide", "t", nil, encodeVars); return err }},
		{"GetVar", func() error { _, err := svc.GetVar(ctx, "wide", "A0001", false); return err }},
		{"ListVarsResolved", func() error { _, err := svc.ListVarsResolved(ctx, "wide", true); return err }},
		{"Resolved", func() error { _, err := svc.Resolved(ctx, "wide", false); return err }},
		{"Resolved reveal", func() error { _, err := svc.Resolved(ctx, "wide", true); return err }},
	}
	most := int64(10 * (2*n + 1))
	for _, rd := range reads {
		steps.Store(0)
		if err := rd.read(); err != nil {
			t.Fatalf("%s: %v", rd.name, err)
		}
		if got := steps.Load(); got > most {
			t.Errorf("%s of %d vars followed %d references, want at most %d (one pass, not one walk per var)", rd.name, 2*n+1, got, most)
		}
	}
}
