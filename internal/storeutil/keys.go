package storeutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/envy-dev/envy"
)

// SameKeys checks that keys name exactly the data keys ids: a rotation
// planned over one set of keys must not apply to another (EConflict).
func SameKeys(ids []uint32, keys []envy.DataKey) error {
	want := make([]uint32, 0, len(keys))
	for _, k := range keys {
		want = append(want, k.ID)
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		return envy.Errorf(envy.EConflict, "the data keys changed while they were being rewrapped (another rotation?): try again")
	}
	return nil
}

// KeyIDBytes is how a sealed value names its data key: bytes 2–5 of the
// crypto package's sealed format (format | key id, 4 bytes big endian |
// nonce | ciphertext and tag).
func KeyIDBytes(id uint32) []byte {
	return []byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}

// SealedUnder tells whether sealed names data key id. Empty bytes (no
// secret) need no key: they are under every key.
func SealedUnder(sealed []byte, id uint32) bool {
	if len(sealed) == 0 {
		return true
	}
	return len(sealed) >= 5 && bytes.Equal(sealed[1:5], KeyIDBytes(id))
}

// OIDCSpecs reads the stored form (a JSON document) of every OIDC
// provider: the retirement of the older data keys (RetireDataKeys)
// checks their sealed client secrets, which the document holds in
// base64 (OIDCSecretsNotUnder), in its own transaction.
const OIDCSpecs = `SELECT spec FROM oidc_providers`

// WebhookSecretsNotUnder counts the webhooks whose secret, or previous
// secret, is sealed under another data key than $1 (KeyIDBytes): what
// the retirement of the older data keys checks. substr is SQLite's and
// PostgreSQL's (on bytea) alike.
func WebhookSecretsNotUnder(mark func(int) string) string {
	return `SELECT COUNT(*) FROM webhooks WHERE substr(secret, 2, 4) <> ` + mark(1) +
		` OR (old_secret IS NOT NULL AND length(old_secret) > 0 AND substr(old_secret, 2, 4) <> ` + mark(1) + `)`
}

// OIDCSecretsNotUnder counts, among the stored forms of OIDC providers
// (specs, as OIDCSpecs reads them), those whose sealed client secret
// names another data key than keep.
func OIDCSecretsNotUnder(specs []string, keep uint32) (int, error) {
	n := 0
	for _, spec := range specs {
		sealed, err := oidcSecretOf(spec)
		if err != nil {
			return 0, err
		}
		if !SealedUnder(sealed, keep) {
			n++
		}
	}
	return n, nil
}

// oidcSecretOf returns the sealed client secret of a provider's stored
// form.
func oidcSecretOf(spec string) ([]byte, error) {
	var p struct {
		SealedSecret []byte `json:"sealed_secret"`
	}
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return nil, fmt.Errorf("decode an OIDC provider: %w", err)
	}
	return p.SealedSecret, nil
}

// ReplaceOIDCSecret returns spec, a provider's stored form, with
// replacement in place of its sealed client secret, if that is still
// sealed (ok false otherwise: the provider was given another secret
// meanwhile). Every other field is kept as it is stored.
func ReplaceOIDCSecret(spec string, sealed, replacement []byte) (out string, ok bool, err error) {
	cur, err := oidcSecretOf(spec)
	if err != nil || !bytes.Equal(cur, sealed) {
		return "", false, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(spec), &doc); err != nil {
		return "", false, fmt.Errorf("decode an OIDC provider: %w", err)
	}
	if doc["sealed_secret"], err = json.Marshal(replacement); err != nil {
		return "", false, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}
