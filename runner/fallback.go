package runner

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envy-dev/envy/client"
)

// The fallback file is
//
//	magic (8 bytes) | salt (32) | nonce (12) | AES-256-GCM ciphertext
//
// The key is HKDF-SHA256 of the token, with the file's own random salt and
// the scope in the info, so only a holder of the same token can open the
// file, a file made for one scope does not open as another, and every
// save uses a fresh key (a random nonce under it never repeats). The
// additional data binds the magic and the scope too. The plaintext is
// fallbackCopy as JSON: names, values and which are secret.
var fallbackMagic = []byte("ENVYFB1\n")

const (
	fallbackSaltLen = 32
	fallbackInfo    = "envy run fallback v1\x00"
)

type fallbackCopy struct {
	Scope    string            `json:"scope"`
	Revision int64             `json:"revision"`
	Env      map[string]string `json:"env"`
	Secrets  []string          `json:"secrets"`
	SavedAt  time.Time         `json:"saved_at"`
}

func fallbackAEAD(token, scope string, salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(token), salt, fallbackInfo+scope, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// saveFallback writes an encrypted copy of env to path, mode 0600,
// atomically: a reader sees the old file or the new one, never a part.
func saveFallback(path, token string, env *client.Env, now time.Time) error {
	if token == "" {
		return errors.New("no token to derive the key from")
	}
	plain, err := json.Marshal(fallbackCopy{Scope: env.Scope, Revision: env.Revision, Env: env.Env, Secrets: env.Secrets, SavedAt: now.UTC()})
	if err != nil {
		return err
	}
	salt := make([]byte, fallbackSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	aead, err := fallbackAEAD(token, env.Scope, salt)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Write(fallbackMagic)
	buf.Write(salt)
	buf.Write(nonce)
	buf.Write(aead.Seal(nil, nonce, plain, fallbackAAD(env.Scope)))
	clear(plain)
	return writeFileAtomic(path, buf.Bytes())
}

func fallbackAAD(scope string) []byte {
	return append(append([]byte{}, fallbackMagic...), scope...)
}

// loadFallback opens the copy at path made for scope with token.
func loadFallback(path, token, scope string) (*client.Env, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, time.Time{}, errors.New("it does not exist yet (it is written after the first successful fetch)")
		}
		return nil, time.Time{}, err
	}
	hdr := len(fallbackMagic) + fallbackSaltLen + 12
	if len(data) < hdr+16 || !bytes.Equal(data[:len(fallbackMagic)], fallbackMagic) {
		return nil, time.Time{}, errors.New("it is not an envy fallback file")
	}
	salt := data[len(fallbackMagic) : len(fallbackMagic)+fallbackSaltLen]
	nonce := data[len(fallbackMagic)+fallbackSaltLen : hdr]
	aead, err := fallbackAEAD(token, scope, salt)
	if err != nil {
		return nil, time.Time{}, err
	}
	plain, err := aead.Open(nil, nonce, data[hdr:], fallbackAAD(scope))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("it does not open with this token for scope %s", scope)
	}
	defer clear(plain)
	var c fallbackCopy
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, time.Time{}, errors.New("its content is damaged")
	}
	if c.Scope != scope {
		return nil, time.Time{}, fmt.Errorf("it holds scope %s, not %s", c.Scope, scope)
	}
	return &client.Env{Scope: c.Scope, Revision: c.Revision, Env: c.Env, Secrets: c.Secrets}, c.SavedAt, nil
}

// writeFileAtomic writes data to a temp file beside path, mode 0600,
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once the directory is; a failure here
	// leaves a good file that may not survive a power cut, not worth
	// failing over.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
