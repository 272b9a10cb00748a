package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// TestAStalledServerDoesNotHoldTheOthersWrites stands in for a server
// whose link stalls right after it took the revision counter's lock: a
// connection with envy's settings locks the counter and then says
// nothing. The database must end that session within seconds, so that
// another server's write goes through, and the stalled one learns its
// transaction is gone as a 503, not a 500.
func TestAStalledServerDoesNotHoldTheOthersWrites(t *testing.T) {
	pgtest.ServerURL(t)
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)

	cfg, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stalled, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close(context.Background())
	if _, err := stalled.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := stalled.Exec(ctx, "SELECT revision FROM meta WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	// The other server's write: it waits for the lock until the database
	// ends the stalled session (idle_in_transaction_session_timeout),
	// well before this test's own deadline.
	wctx, wcancel := context.WithTimeout(ctx, 25*time.Second)
	defer wcancel()
	_, _, err = s.PutScope(wctx, envy.ScopeWrite{Path: "acme/app", Actor: "t",
		Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) { return "", nil, nil }})
	if err != nil {
		t.Fatalf("a write behind a stalled session's lock: %v (the database did not end the stalled session: idle_in_transaction_session_timeout unset?)", err)
	}

	// The stalled session was ended: its next statement fails, and envy
	// answers that as unavailable.
	_, err = stalled.Exec(ctx, "SELECT 1")
	var pe *pgconn.PgError
	if err == nil {
		t.Fatal("the stalled session still runs statements after the write went through")
	}
	if errors.As(err, &pe) && pe.Code != "25P03" {
		t.Errorf("the stalled session ended with %s, want 25P03", pe.Code)
	}
	if code := envy.ErrorCode(s.dbErr("write", err)); code != envy.EUnavailable {
		t.Errorf("a session ended by the database maps to %s, want unavailable", code)
	}
	pe25 := &pgconn.PgError{Code: "25P03"}
	if code := envy.ErrorCode(s.dbErr("write", pe25)); code != envy.EUnavailable {
		t.Errorf("SQLSTATE 25P03 maps to %s, want unavailable", code)
	}
}

func TestParseURLSetsTheSessionTimeoutsUnlessGiven(t *testing.T) {
	cfg, err := ParseURL("postgres://u@127.0.0.1/db?lock_timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	rp := cfg.ConnConfig.RuntimeParams
	for k, want := range map[string]string{
		"idle_in_transaction_session_timeout": defaultIdleInTx,
		"lock_timeout":                        "3s",
		"tcp_user_timeout":                    "10000",
		"tcp_keepalives_idle":                 "5",
	} {
		if rp[k] != want {
			t.Errorf("%s = %q, want %q", k, rp[k], want)
		}
	}
	if cfg.ConnConfig.DialFunc == nil {
		t.Error("no dialer with keepalives")
	}
}
