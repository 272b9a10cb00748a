package client

import (
	"context"
	"net/http"
)

// RotateKeysInput is a key rotation: exactly one of NewMasterKeyURL and
// NewMasterKeyFile names the new master key.
type RotateKeysInput struct {
	NewMasterKeyURL  string `json:"new_master_key_url,omitempty"`
	NewMasterKeyFile []byte `json:"new_master_key_file,omitempty"` // the key file's 32 bytes
	NewDataKey       bool   `json:"new_data_key,omitempty"`
}

// RotateKeysResult is what a rotation did.
type RotateKeysResult struct {
	Rewrapped    []uint32 `json:"rewrapped"`
	AddedDataKey uint32   `json:"added_data_key,omitempty"`
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
