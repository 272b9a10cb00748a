package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/internal/fsutil"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/sqlite"
)

// openStore opens the store the configuration names: PostgreSQL when
// --database-url is given, else SQLite in --data-dir. where names it for
// the logs, without a password.
func openStore(ctx context.Context, databaseURL, dataDir string, log *slog.Logger) (s envy.Store, where string, err error) {
	if databaseURL != "" {
		if err := checkDatabaseURL(databaseURL); err != nil {
			return nil, "", err
		}
		where = redactURL(databaseURL)
		pg, err := postgres.Open(ctx, databaseURL, postgres.Options{Logger: log})
		if err != nil {
			return nil, "", fmt.Errorf("cannot open the database at --database-url %s: %v", where, err)
		}
		return pg, where, nil
	}
	if err := fsutil.MkdirPrivate(dataDir); err != nil {
		return nil, "", fmt.Errorf("cannot create --data-dir %s: %v", dataDir, err)
	}
	lite, err := sqlite.Open(ctx, filepath.Join(dataDir, "envy.db"))
	if errors.Is(err, sqlite.ErrLocked) {
		return nil, "", fmt.Errorf("another envy server is already using --data-dir %s: SQLite serves one server at a time; stop the other one, or use --database-url postgres://… to run several servers on one database", dataDir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("cannot open the database in %s: %v", dataDir, err)
	}
	return lite, dataDir, nil
}

// checkDatabaseURL refuses anything but a postgres:// URL, naming the flag.
func checkDatabaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("invalid --database-url: want postgres://user:password@host:port/dbname (leave it empty to use SQLite in --data-dir)")
	}
	return nil
}

// redactURL hides a database URL's passwords, for logs and errors: the
// user's (postgres://user:xxxxx@…) and those given as parameters
// (password=, sslpassword=, which libpq and pgx read too).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			key, err := url.QueryUnescape(k)
			if err != nil || secretParams[strings.ToLower(strings.TrimSpace(key))] {
				parts[i] = k + "=xxxxx" // a key that does not read may be one
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.Redacted()
}

// secretParams are the parameters of a database URL that hold a secret.
var secretParams = map[string]bool{"password": true, "sslpassword": true}

// wrongMasterKey is the error of a master key that can't open the data
// keys of the store at where: when a rotation retired it, the data was
// sealed with a newer key, which is to be installed; else otherwise says
// what to do.
func wrongMasterKey(ctx context.Context, mk crypto.MasterKey, st envy.Store, where, otherwise string) error {
	if at, ok := crypto.RetiredAt(ctx, mk, st); ok {
		return fmt.Errorf("the master key can't open the data keys of the database at %s: this data was sealed with a newer master key: install the rotated key (--master-key-file or --master-key-url); `envy keys rotate` retired the one given at %s",
			where, at.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("the master key can't open the data keys of the database at %s: %s", where, otherwise)
}

// openKeyring opens the keyring over the store and keeps it following the
// data keys that other servers add. A master key that can't open the
// store's data keys stops the server with a message saying what to fix.
func openKeyring(ctx context.Context, mk crypto.MasterKey, st envy.Store, where string, log *slog.Logger) (*crypto.Keyring, func(), error) {
	keys, err := crypto.OpenKeyring(ctx, mk, st)
	if err != nil {
		if errors.Is(err, crypto.ErrWrongMasterKey) {
			return nil, nil, wrongMasterKey(ctx, mk, st, where,
				fmt.Sprintf("every server sharing a database needs the same master key (--master-key-file or --master-key-url); %v", err))
		}
		return nil, nil, err
	}
	cancel := keys.Follow(st, func(err error) { log.Error("cannot load new data keys", "err", err) })
	return keys, cancel, nil
}
