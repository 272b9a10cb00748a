package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
)

// newAdminTokenCmd returns `envy server admin-token`: the offline
// recovery of a server whose admin tokens are all revoked or lost.
func newAdminTokenCmd() *cobra.Command {
	var c serverConfig
	var name string
	cmd := &cobra.Command{
		Use:   "admin-token",
		Short: "Mint a new admin token from the server's host (recovery)",
		Long: `Mint a new token with admin on **, whatever tokens exist, straight into
the server's database, and print it once. This is the way back in when
every admin token has been revoked or lost: ENVY_BOOTSTRAP_TOKEN counts
only while no token exists.

It needs what the server needs: the data (--data-dir, or --database-url)
and the master key (--master-key-file or --master-key-url), and is
audited (token.create by "` + service.RecoveryActor + `"). With SQLite, stop
the server first (one process per data directory); with PostgreSQL it may
run while the servers do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := envFlags(cmd.Flags(), os.Getenv); err != nil {
				return err
			}
			return runAdminToken(cmd.Context(), c, name, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.dataDir, "data-dir", "envy-data", "the server's --data-dir (SQLite)")
	f.StringVar(&c.databaseURL, "database-url", "", "the server's --database-url (PostgreSQL)")
	f.StringVar(&c.masterKeyFile, "master-key-file", "", "the server's master key file (default <data-dir>/master.key)")
	f.StringVar(&c.masterKeyURL, "master-key-url", "", "the server's gocloud.dev/secrets master key URL")
	f.StringVar(&name, "name", "admin (recovered)", "name of the new token")
	return cmd
}

func runAdminToken(ctx context.Context, c serverConfig, name string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if c.databaseURL == "" {
		// Never a new database: a typo in --data-dir must not make one.
		if _, err := os.Stat(filepath.Join(c.dataDir, "envy.db")); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no envy database in --data-dir %s (no envy.db there): give the server's --data-dir or --database-url; no token minted", c.dataDir)
		}
	}
	store, where, err := openStore(ctx, c.databaseURL, c.dataDir, log)
	if err != nil {
		return err
	}
	defer store.Close()
	mk, err := reopenMasterKey(c)(ctx)
	if err != nil {
		return fmt.Errorf("cannot open the master key (--master-key-file or --master-key-url): %v; no token minted", err)
	}
	defer mk.Close()
	keys, err := crypto.OpenKeyring(ctx, mk, store)
	if err != nil {
		if errors.Is(err, crypto.ErrWrongMasterKey) {
			return fmt.Errorf("%w; no token minted", wrongMasterKey(ctx, mk, store, where, "give the server's own master key"))
		}
		return err
	}
	defer keys.Close()
	svc := service.New(store, keys, service.Options{Logger: log})
	defer svc.Close()
	t, plain, err := svc.RecoverAdmin(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created admin token %s (%s, admin on **) in the database at %s. It is shown this once; keep it safe:\n\n    %s\n\n", t.ID, t.Name, where, plain)
	return nil
}

// newServerCmdWithRecovery is `envy server` with its admin-token command.
func newServerCmdWithRecovery() *cobra.Command {
	cmd := newServerCmd()
	cmd.AddCommand(newAdminTokenCmd())
	return cmd
}
