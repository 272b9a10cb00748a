package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/http/admin"
	"github.com/envy-dev/envy/internal/storeutil"
)

// rotateKeys is the server side of `envy keys rotate`: it opens the new
// master key the request names and moves the keyring's data keys to it;
// with Reseal it then reseals every value in the background, until life
// ends (the server stops): resealSecrets (service.ResealSecrets) first,
// then the values, then the older data keys are retired.
func rotateKeys(life context.Context, kr *crypto.Keyring, st envy.Store, resealSecrets func(context.Context) (int, error), log *slog.Logger) admin.Rotate {
	var resealing atomic.Bool
	return func(ctx context.Context, in admin.RotateRequest) (admin.RotateReply, error) {
		rs, ok := st.(crypto.Resealer)
		if in.Reseal && !ok {
			return admin.RotateReply{}, envy.Errorf(envy.EInternal, "this store can't reseal its values")
		}
		if in.Reseal && !resealing.CompareAndSwap(false, true) {
			return admin.RotateReply{}, envy.Errorf(envy.EConflict, "a reseal is still running: wait for it to end (the server logs it)")
		}
		reply, err := rotate(ctx, kr, in)
		if !in.Reseal {
			return reply, err
		}
		if err != nil {
			resealing.Store(false)
			return reply, err
		}
		reply.Resealing = true
		go func() {
			defer resealing.Store(false)
			start := time.Now()
			log.Info("resealing every value under the newest data key", "data_key", kr.NewestKeyID())
			// The secrets kept besides the values first (the OIDC
			// providers' client secrets, the webhooks' signing secrets):
			// the reseal then retires the older data keys, which it
			// refuses while one of them is still sealed under them.
			if _, err := resealSecrets(life); err != nil {
				log.Error("reseal failed; run envy keys rotate --reseal again", "err", err)
				return
			}
			res, err := kr.Reseal(life, rs)
			if err != nil {
				log.Error("reseal failed; run envy keys rotate --reseal again", "resealed", res.Resealed, "err", err)
				return
			}
			log.Info("resealed every value; older data keys retired", "resealed", res.Resealed, "retired", fmt.Sprint(res.Retired), "took", time.Since(start).Round(time.Millisecond))
		}()
		return reply, nil
	}
}

// rotate opens the new master key and rotates to it.
func rotate(ctx context.Context, kr *crypto.Keyring, in admin.RotateRequest) (admin.RotateReply, error) {
	var (
		mk  crypto.MasterKey
		err error
	)
	if in.NewMasterKeyURL != "" {
		if mk, err = crypto.OpenMasterKeyURL(ctx, in.NewMasterKeyURL); err != nil {
			return admin.RotateReply{}, envy.Invalid(envy.Field("body.new_master_key_url", "invalid", "%s", err.Error()))
		}
	} else if mk, err = crypto.MasterKeyFromBytes(in.NewMasterKeyFile, "(the new key file)"); err != nil {
		return admin.RotateReply{}, envy.Invalid(envy.Field("body.new_master_key_file", "invalid", "%s", err.Error()))
	}
	res, err := kr.Rotate(ctx, mk, in.NewDataKey)
	if err != nil {
		// A failed Rotate changed nothing and mk is still ours; a key
		// the keyring adopted is its own to close, never ours.
		if !kr.Owns(mk) {
			mk.Close()
		}
		if envy.ErrorCode(err) == envy.EConflict {
			return admin.RotateReply{}, envy.Errorf(envy.EConflict, "%v", err)
		}
		if errors.Is(err, crypto.ErrWrongMasterKey) {
			return admin.RotateReply{}, envy.Errorf(envy.EConflict, "%v", err)
		}
		return admin.RotateReply{}, envy.Errorf(envy.EInternal, "key rotation failed: %v", err)
	}
	return admin.RotateReply{Rewrapped: res.Rewrapped, AddedDataKey: res.Added}, nil
}

// backupOf is the server side of `envy backup`: a snapshot of the
// server's own store, in one read transaction, while it serves.
func backupOf(st envy.Store) admin.Backup {
	return func(ctx context.Context, w io.Writer) error {
		m, ok := st.(storeutil.Mover)
		if !ok {
			return envy.Errorf(envy.EInternal, "this store can't be backed up")
		}
		_, err := writeBackup(ctx, m, w)
		return err
	}
}

// reopenMasterKey opens the server's master key again from where its
// flags say it is, without ever creating a key file: after another server
// sharing the database rotated the keys, the operator has put the new key
// there (a replaced file, a KMS key behind the same URL).
func reopenMasterKey(c serverConfig) func(ctx context.Context) (crypto.MasterKey, error) {
	return func(ctx context.Context) (crypto.MasterKey, error) {
		if c.masterKeyURL != "" {
			return crypto.OpenMasterKeyURL(ctx, c.masterKeyURL)
		}
		path := c.masterKeyFile
		if path == "" {
			path = filepath.Join(c.dataDir, "master.key")
		}
		return crypto.ReadMasterKeyFile(path)
	}
}
