package storeutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

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

// A sealed value names the data key it was sealed under: its first byte
// is the format (sealFormat, 1) and the next four the key's id, big
// endian (crypto's layout; the stores' reseal queries read the same
// bytes).
const (
	sealFormat = 1
	sealIDEnd  = 5
)

// SealedKeyID returns the id of the data key that sealed names, and false
// for bytes that are not a sealed value of that format (a test's).
func SealedKeyID(sealed []byte) (uint32, bool) {
	if len(sealed) < sealIDEnd || sealed[0] != sealFormat {
		return 0, false
	}
	return uint32(sealed[1])<<24 | uint32(sealed[2])<<16 | uint32(sealed[3])<<8 | uint32(sealed[4]), true
}

// AddKeyIDs appends to ids the ids of the data keys that the values of
// changes are sealed under, those it lacks: the keys a write needs to
// exist when it commits (a delete stores no value).
func AddKeyIDs(ids []uint32, changes []envy.VarChange) []uint32 {
	for i := range changes {
		if changes[i].Delete {
			continue
		}
		ids = addKeyID(ids, changes[i].Sealed)
	}
	return ids
}

// addKeyID appends to ids the id of the data key that sealed names, when
// it is a sealed value and ids lacks it.
func addKeyID(ids []uint32, sealed []byte) []uint32 {
	if id, ok := SealedKeyID(sealed); ok && !slices.Contains(ids, id) {
		ids = append(ids, id)
	}
	return ids
}

// SecretKeyIDs returns the ids of the data keys that sealed secrets (a
// webhook's, an OIDC provider's) are sealed under, sorted, each once:
// the keys their write needs to exist when it commits, as a value's
// (AddKeyIDs).
func SecretKeyIDs(sealed ...[]byte) []uint32 {
	var ids []uint32
	for _, b := range sealed {
		ids = addKeyID(ids, b)
	}
	slices.Sort(ids)
	return ids
}

// EffectKeyIDs is AddKeyIDs for the effects of a write.
func EffectKeyIDs(ids []uint32, eff []Effect) []uint32 {
	for i := range eff {
		if eff[i].Delete {
			continue
		}
		ids = addKeyID(ids, eff[i].Sealed)
	}
	return ids
}

// RetiredKey is the error of a write that stores a value sealed under
// data key id, which a key rotation retired (deleted from the store) since
// the value was sealed: committed, the value would open nowhere once the
// servers that still hold the key restart. The write is refused, and
// changes nothing; it is worth trying again at once, as the server reloads
// its data keys meanwhile and seals the retry under the newest.
func RetiredKey(id uint32) error {
	return &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Second,
		Message: fmt.Sprintf("the data key it was sealed under was retired; try again (a value of this write names data key %d, which a key rotation retired since)", id)}
}

// RetiredKeyNotice is the notice a store publishes when it refused a write
// for a retired data key: the server that sealed it did not hold the
// newest data key, newest (it missed the notice, or it comes late), and
// its keyring reloads the data keys on it (crypto.Keyring.Follow).
func RetiredKeyNotice(newest uint32) envy.Notice {
	return envy.Notice{Kind: envy.NoticeDataKey, KeyID: newest}
}
