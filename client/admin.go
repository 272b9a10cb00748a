package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// RotateKeysInput is a key rotation: exactly one of NewMasterKeyURL and
// NewMasterKeyFile names the new master key.
type RotateKeysInput struct {
	NewMasterKeyURL  string `json:"new_master_key_url,omitempty"`
	NewMasterKeyFile []byte `json:"new_master_key_file,omitempty"` // the key file's 32 bytes
	NewDataKey       bool   `json:"new_data_key,omitempty"`
	// Reseal then seals every stored value again under the newest data
	// key, in the background, and deletes the older data keys.
	Reseal bool `json:"reseal,omitempty"`
}

// RotateKeysResult is what a rotation did.
type RotateKeysResult struct {
	Rewrapped    []uint32 `json:"rewrapped"`
	AddedDataKey uint32   `json:"added_data_key,omitempty"`
	Resealing    bool     `json:"resealing,omitempty"`
}

// RotateKeys moves every data key of the server's store to a new master
// key while the server serves, and with NewDataKey adds a data key for
// new writes (admin on every scope). The request carries key material
// when NewMasterKeyFile is set: send it only over TLS or to loopback.
func (c *Client) RotateKeys(ctx context.Context, in RotateKeysInput) (*RotateKeysResult, error) {
	var out RotateKeysResult
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/admin/keys/rotate", body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Backup writes a consistent, still encrypted snapshot of the server's
// store to w, as it streams in (admin on every scope). The snapshot ends
// with a line that counts and digests every table: a stream cut short
// lacks it, which is how a failed backup shows (envy restore refuses it).
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr+"/v1/admin/backup", nil)
	if err != nil {
		return fmt.Errorf("envy client: %w", err)
	}
	hr.Header.Set("Accept", "application/x-ndjson, application/problem+json")
	hr.Header.Set("Authorization", "Bearer "+c.bearer())
	if c.userAgent != "" {
		hr.Header.Set("User-Agent", c.userAgent)
	}
	hc := *c.hc
	hc.Timeout = 0 // a backup takes as long as the store is large
	resp, err := hc.Do(hr)
	if err != nil {
		return c.netError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return parseError(resp, data)
	}
	fw := &writeErr{w: w}
	if _, err := io.Copy(fw, resp.Body); err != nil {
		if fw.err != nil { // writing, not reading the server's answer
			return fmt.Errorf("envy client: cannot write the backup: %w", fw.err)
		}
		return c.netError(err)
	}
	return nil
}

// writeErr keeps the error of its writer's, to tell it from the
// connection's.
type writeErr struct {
	w   io.Writer
	err error
}

func (e *writeErr) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}
