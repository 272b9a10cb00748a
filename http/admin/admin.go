// Package admin serves the operations on a whole server that an operator
// runs with the CLI: `envy keys rotate` (POST /v1/admin/keys/rotate) and
// `envy backup` (GET /v1/admin/backup). They need admin on every scope, and
// each is recorded in the audit log.
package admin

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// RotateRequest is the body of POST /v1/admin/keys/rotate. Exactly one of
// NewMasterKeyURL and NewMasterKeyFile names the new master key.
type RotateRequest struct {
	// NewMasterKeyURL is a gocloud.dev/secrets URL, as --master-key-url.
	NewMasterKeyURL string
	// NewMasterKeyFile is the 32 bytes of a key file, as --master-key-file
	// holds them (base64 in the JSON body).
	NewMasterKeyFile []byte
	// NewDataKey adds a data key, wrapped by the new master key, that
	// seals every value written from then on.
	NewDataKey bool
	// Reseal then seals every stored value again under the newest data
	// key, in the background, and deletes the older data keys.
	Reseal bool
}

// RotateReply is what a rotation did.
type RotateReply struct {
	Rewrapped    []uint32 `json:"rewrapped"`                // ids of the data keys now wrapped by the new master key
	AddedDataKey uint32   `json:"added_data_key,omitempty"` // id of the new data key
	Resealing    bool     `json:"resealing,omitempty"`      // a reseal runs in the background
}

// Rotate rotates the master key; its errors are envy errors.
type Rotate func(ctx context.Context, in RotateRequest) (RotateReply, error)

// Backup writes a consistent snapshot of the store to w.
type Backup func(ctx context.Context, w io.Writer) error

// Ops are the operations the routes run.
type Ops struct {
	Rotate Rotate
	Backup Backup
}

// Register mounts the admin routes on api.
func Register(api *envyhttp.Server, svc *service.Service, ops Ops) {
	body := &wire.Body{Limit: 64 << 10, RequireJSON: true}
	// admin authenticates r and checks that its token holds admin on
	// every scope; it answers the refusal itself.
	admin := func(w http.ResponseWriter, r *http.Request, action envy.AuditAction) (*http.Request, bool) {
		r2, err := api.Authenticate(r, bearer(r))
		if err == nil {
			err = svc.RequireAdmin(r2.Context(), action)
		}
		if err != nil {
			api.WriteError(w, r, err)
			return nil, false
		}
		return r2, true
	}
	api.Handle("GET /v1/admin/backup", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := admin(w, r, "backup")
		if !ok {
			return
		}
		cw := &countingWriter{w: w}
		err := svc.AdminOp(r.Context(), envy.AuditBackup, nil, func(ctx context.Context) error {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			return ops.Backup(ctx, cw)
		})
		if err != nil {
			if cw.n == 0 {
				api.WriteError(w, r, err)
			}
			// Else the stream just ends without its last line, which
			// the client takes for what it is: a failed backup.
			api.Logger().Error("backup failed", "err", err)
		}
	}))
	api.Handle("POST /v1/admin/keys/rotate", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := admin(w, r, "keys.rotate")
		if !ok {
			return
		}
		in, err := readRotate(body, w, r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		var out RotateReply
		err = svc.AdminOp(r.Context(), envy.AuditKeysRotate, nil, func(ctx context.Context) error {
			var err error
			out, err = ops.Rotate(ctx, in)
			return err
		})
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		wire.WriteJSON(w, "application/json", http.StatusOK, out)
	}))
}

func readRotate(body *wire.Body, w http.ResponseWriter, r *http.Request) (RotateRequest, error) {
	var in RotateRequest
	o, err := body.Object(w, r)
	if err != nil {
		return in, err
	}
	if err := o.Only("new_master_key_url", "new_master_key_file", "new_data_key", "reseal"); err != nil {
		return in, err
	}
	u, hasURL, err := o.String("new_master_key_url")
	if err != nil {
		return in, err
	}
	f, hasFile, err := o.String("new_master_key_file")
	if err != nil {
		return in, err
	}
	nd, err := o.Bool("new_data_key")
	if err != nil {
		return in, err
	}
	rs, err := o.Bool("reseal")
	if err != nil {
		return in, err
	}
	in.Reseal = rs != nil && *rs
	switch {
	case hasURL == hasFile:
		return in, envy.Invalid(envy.Field("body.new_master_key_url", "required", "give new_master_key_url or new_master_key_file (base64 of the key file's 32 bytes), not both"))
	case hasFile:
		raw, err := base64.StdEncoding.DecodeString(f)
		if err != nil || len(raw) != 32 {
			return in, envy.Invalid(envy.Field("body.new_master_key_file", "invalid", "want the base64 of the key file's 32 bytes"))
		}
		in.NewMasterKeyFile = raw
	default:
		if u == "" {
			return in, envy.Invalid(envy.Field("body.new_master_key_url", "required", "must not be empty"))
		}
		in.NewMasterKeyURL = u
	}
	in.NewDataKey = nd != nil && *nd
	return in, nil
}

// countingWriter counts what was written, so that an error after the
// first byte is not written into the body.
type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
