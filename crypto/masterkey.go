package crypto

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"

	"gocloud.dev/secrets"
	_ "gocloud.dev/secrets/localsecrets" // base64key://

	"github.com/envy-dev/envy"
)

// MasterKey wraps and unwraps data keys. The master key itself never leaves
// its implementation (a local file or a KMS).
type MasterKey interface {
	Wrap(ctx context.Context, dataKey []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
	Close() error
}

// KeySize is the size in bytes of master keys in files and of data keys.
const KeySize = 32

// ErrClosed is returned by a MasterKey used after Close.
var ErrClosed = errors.New("crypto: master key is closed")

// fileWrapFormat is the first byte of a data key wrapped by a file master
// key: fileWrapFormat | 12-byte nonce | ciphertext+tag.
const fileWrapFormat byte = 1

// fileWrapAD binds a wrapped data key to its purpose.
var fileWrapAD = []byte("envy/master-key-file/v1")

// fileKey is a master key read from a local file.
type fileKey struct {
	path   string
	aead   cipher.AEAD
	closed atomic.Bool
}

// OpenMasterKeyFile reads the 32-byte master key in the file at path. When
// the file does not exist it creates it, with 32 random bytes and mode 0600
// (and its directory with mode 0700 when needed), and reports created=true:
// the caller should warn that the key sits beside the data.
//
// A file of another size, or one that group or others may access, is
// refused with an error naming the file.
func OpenMasterKeyFile(path string) (mk MasterKey, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("master key file: no path given")
	}
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, created, err = createKeyFile(path)
	}
	if err != nil {
		return nil, false, err
	}
	defer clear(key)
	mk, err = fileKeyOf(key, path)
	return mk, created, err
}

// DataKeyLister is what OpenMasterKeyFileFor asks of a store.
type DataKeyLister interface {
	DataKeys(ctx context.Context) ([]envy.DataKey, error)
}

// OpenMasterKeyFileFor is OpenMasterKeyFile for the key of store: a new
// key is made only while the store holds no wrapped data keys. When it
// holds some and the file is missing, it fails with "master key file
// missing" and writes nothing: a new random key could open none of them,
// and would stand where the lost one should be restored.
func OpenMasterKeyFileFor(ctx context.Context, path string, store DataKeyLister) (mk MasterKey, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("master key file: no path given")
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		dks, err := store.DataKeys(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("master key file %s: list the data keys: %w", path, err)
		}
		if len(dks) > 0 {
			return nil, false, fmt.Errorf("master key file missing: %s does not exist, but the database holds %d data keys wrapped by a master key; restore the key file (no new key was written)", path, len(dks))
		}
	}
	return OpenMasterKeyFile(path)
}

// fileKeyOf returns the master key of a key file's 32 bytes.
func fileKeyOf(key []byte, path string) (MasterKey, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return &fileKey{path: path, aead: aead}, nil
}

// readKeyFile reads and checks a key file. It returns an error that
// satisfies errors.Is(err, fs.ErrNotExist) when the file is absent.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("master key file %s: %w", path, unwrapPathError(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s: mode %04o lets group or others access it; run chmod 600 on it",
			path, fi.Mode().Perm())
	}
	if fi.Size() != KeySize {
		return nil, fmt.Errorf("master key file %s: holds %d bytes, want exactly %d raw bytes", path, fi.Size(), KeySize)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, unwrapPathError(err))
	}
	if len(key) != KeySize { // changed between Stat and ReadFile
		clear(key)
		return nil, fmt.Errorf("master key file %s: holds %d bytes, want exactly %d raw bytes", path, len(key), KeySize)
	}
	return key, nil
}

// createKeyFile writes a new random key to path without ever exposing a
// partly written file: it writes and syncs a temporary file in the same
// directory, then links it into place (which fails when another process
// created the file meanwhile; then that file is read instead).
func createKeyFile(path string) (key []byte, created bool, err error) {
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("master key file %s: create directory: %w", path, unwrapPathError(err))
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// Exactly 0700, whatever the umask took away.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("master key file %s: create directory: %w", path, unwrapPathError(err))
		}
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("master key file %s: %w", path, err)
	}
	fail := func(err error) ([]byte, bool, error) {
		clear(key)
		return nil, false, fmt.Errorf("master key file %s: create: %w", path, unwrapPathError(err))
	}

	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return fail(err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fail(err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race: use its key.
			clear(key)
			key, err := readKeyFile(path)
			return key, false, err
		}
		// No hard links here: create the file exclusively instead.
		if err := writeExclusive(path, key); err != nil {
			if errors.Is(err, fs.ErrExist) {
				clear(key)
				key, err := readKeyFile(path)
				return key, false, err
			}
			return fail(err)
		}
	}
	syncDir(dir)
	return key, true, nil
}

func writeExclusive(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// syncDir makes a new directory entry durable, so that the key file
// survives a power cut once the data keys it wraps are stored. Errors are
// ignored: some systems can't sync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// unwrapPathError drops the path from an *fs.PathError, since our messages
// already name the file.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

func (k *fileKey) Wrap(_ context.Context, dataKey []byte) ([]byte, error) {
	if k.closed.Load() {
		return nil, ErrClosed
	}
	ns := k.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(dataKey)+k.aead.Overhead())
	out[0] = fileWrapFormat
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("master key file %s: wrap: %w", k.path, err)
	}
	return k.aead.Seal(out, out[1:], dataKey, fileWrapAD), nil
}

func (k *fileKey) Unwrap(_ context.Context, wrapped []byte) ([]byte, error) {
	if k.closed.Load() {
		return nil, ErrClosed
	}
	ns := k.aead.NonceSize()
	if len(wrapped) < 1+ns+k.aead.Overhead() || wrapped[0] != fileWrapFormat {
		return nil, fmt.Errorf("master key file %s: unwrap: not a data key wrapped by a master key file", k.path)
	}
	dk, err := k.aead.Open(nil, wrapped[1:1+ns], wrapped[1+ns:], fileWrapAD)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: unwrap: authentication failed", k.path)
	}
	return dk, nil
}

func (k *fileKey) Close() error {
	k.closed.Store(true)
	return nil
}

// urlKey is a master key behind a gocloud.dev/secrets Keeper.
type urlKey struct {
	scheme string
	keeper *secrets.Keeper
}

// OpenMasterKeyURL opens the master key at a gocloud.dev/secrets URL:
// base64key://<url-safe base64 of 32 bytes> always, and the cloud KMS
// schemes registered in kms_drivers.go unless built with the tag
// envy_nokms.
//
// The URL may hold key material (base64key:// does), so no error ever
// contains it: errors name only the scheme.
func OpenMasterKeyURL(ctx context.Context, rawURL string) (MasterKey, error) {
	scheme := urlScheme(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL: don't use it.
		return nil, fmt.Errorf("master key URL (scheme %q): not a valid URL", scheme)
	}
	scheme = strings.ToLower(u.Scheme)
	if scheme == "" {
		return nil, errors.New("master key URL: no scheme (want one of " + strings.Join(keeperSchemes(), ", ") + ")")
	}
	mux := secrets.DefaultURLMux()
	if !mux.ValidKeeperScheme(scheme) {
		return nil, fmt.Errorf("master key URL: unsupported scheme %q (want one of %s)", scheme, strings.Join(keeperSchemes(), ", "))
	}
	if scheme == "base64key" && u.Host == "" {
		// localsecrets would make up a random key, which would make every
		// data key unreadable after a restart.
		return nil, errors.New(`master key URL (scheme "base64key"): no key; want base64key://<url-safe base64 of 32 bytes>`)
	}
	keeper, err := mux.OpenKeeperURL(ctx, u)
	if err != nil {
		hint := ""
		if scheme == "base64key" {
			hint = " (want base64key://<url-safe base64 of 32 bytes>)"
		}
		return nil, fmt.Errorf("master key URL (scheme %q): %s%s", scheme, redact(err.Error(), rawURL, u), hint)
	}
	return &urlKey{scheme: scheme, keeper: keeper}, nil
}

// keeperSchemes lists the schemes of the registered secrets drivers.
func keeperSchemes() []string {
	return secrets.DefaultURLMux().KeeperSchemes()
}

// urlScheme returns what precedes "://" or ":" in s when it looks like a
// URL scheme, and "" otherwise; it never returns any other part of s.
func urlScheme(s string) string {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return ""
	}
	for j, c := range s[:i] {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return ""
		}
	}
	return strings.ToLower(s[:i])
}

// redact removes from msg every part of the URL that might hold a secret.
func redact(msg, rawURL string, u *url.URL) string {
	parts := []string{rawURL, u.String(), u.Redacted(), u.Host, u.Opaque, u.Path, u.RawPath, u.RawQuery, u.Fragment}
	if u.User != nil {
		parts = append(parts, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		if len(p) >= 2 { // don't redact "/" and the like
			msg = strings.ReplaceAll(msg, p, "[redacted]")
		}
	}
	return msg
}

func (k *urlKey) Wrap(ctx context.Context, dataKey []byte) ([]byte, error) {
	w, err := k.keeper.Encrypt(ctx, dataKey)
	if err != nil {
		return nil, fmt.Errorf("master key (%s): wrap: %w", k.scheme, err)
	}
	return w, nil
}

func (k *urlKey) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	dk, err := k.keeper.Decrypt(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("master key (%s): unwrap: %w", k.scheme, err)
	}
	return dk, nil
}

func (k *urlKey) Close() error {
	if err := k.keeper.Close(); err != nil {
		return fmt.Errorf("master key (%s): close: %w", k.scheme, err)
	}
	return nil
}
