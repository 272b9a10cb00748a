package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/http/admin"
	"github.com/envy-dev/envy/internal/storeutil"
)

// rotateKeys is the server side of `envy keys rotate`: it opens the new
// master key the request names and moves the keyring's data keys to it.
func rotateKeys(kr *crypto.Keyring) admin.Rotate {
	return func(ctx context.Context, in admin.RotateRequest) (admin.RotateReply, error) {
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
			mk.Close()
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
