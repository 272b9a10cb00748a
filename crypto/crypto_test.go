package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	"gocloud.dev/secrets/localsecrets"
)

// memKeyStore is an in-memory KeyStore.
type memKeyStore struct {
	mu      sync.Mutex
	keys    []envy.DataKey
	addErr  error
	onAdd   func() // runs before an add, to simulate a racing server
	nLoads  int
	nStores int
}

func (s *memKeyStore) DataKeys(context.Context) ([]envy.DataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nLoads++
	return append([]envy.DataKey(nil), s.keys...), nil
}

func (s *memKeyStore) AddDataKey(_ context.Context, k envy.DataKey) error {
	if s.onAdd != nil {
		s.onAdd()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addErr != nil {
		return s.addErr
	}
	for _, have := range s.keys {
		if have.ID == k.ID {
			return fmt.Errorf("data key %d exists", k.ID)
		}
	}
	s.nStores++
	s.keys = append(s.keys, k)
	return nil
}

func newFileKey(t testing.TB) (MasterKey, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "master.key")
	mk, created, err := OpenMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false for a new key file")
	}
	t.Cleanup(func() { mk.Close() })
	return mk, path
}

func newKeyring(t testing.TB) (*Keyring, *memKeyStore) {
	t.Helper()
	mk, _ := newFileKey(t)
	ks := &memKeyStore{}
	kr, err := OpenKeyring(context.Background(), mk, ks)
	if err != nil {
		t.Fatal(err)
	}
	return kr, ks
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, ks := newKeyring(t)
	if len(ks.keys) != 1 || ks.keys[0].ID != 1 {
		t.Fatalf("store holds %+v, want one data key with id 1", ks.keys)
	}
	if len(ks.keys[0].Wrapped) <= KeySize {
		t.Fatalf("wrapped data key is %d bytes: not wrapped?", len(ks.keys[0].Wrapped))
	}
	// 65,536 characters (not bytes) of mixed-width unicode.
	long := string([]rune(strings.Repeat("é🔑xß", 65536/4)))
	if n := len([]rune(long)); n != 65536 {
		t.Fatalf("test value has %d chars", n)
	}
	values := map[string]string{
		"empty":   "",
		"short":   "hunter2",
		"newline": "line1\nline2\r\n\x00end",
		"unicode": long,
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			ad := envy.AD("team/prod", "API_KEY", 3)
			s, err := kr.Seal([]byte(v), ad)
			if err != nil {
				t.Fatal(err)
			}
			if want := headerSize + len(v) + tagSize; len(s) != want {
				t.Errorf("sealed length %d, want %d", len(s), want)
			}
			if len(v) >= 4 && bytes.Contains(s, []byte(v)) {
				t.Error("sealed value contains the plaintext")
			}
			got, err := kr.Open(s, ad)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || string(got) != v {
				t.Fatalf("Open returned %d bytes (nil=%v), want %d", len(got), got == nil, len(v))
			}
			// Two seals of one value differ (random nonce).
			s2, _ := kr.Seal([]byte(v), ad)
			if bytes.Equal(s, s2) {
				t.Error("two seals of one value are equal")
			}
		})
	}
}

func TestOpenOtherADFails(t *testing.T) {
	kr, _ := newKeyring(t)
	const secret = "s3cr3t-value-do-not-leak"
	s, err := kr.Seal([]byte(secret), envy.AD("team/prod", "DB_PASSWORD", 2))
	if err != nil {
		t.Fatal(err)
	}
	for name, ad := range map[string][]byte{
		"scope":   envy.AD("team/dev", "DB_PASSWORD", 2),
		"name":    envy.AD("team/prod", "DB_PASSWORD2", 2),
		"version": envy.AD("team/prod", "DB_PASSWORD", 3),
		"nil":     nil,
		// The separators keep scope and name apart.
		"shifted": envy.AD("team/prodD", "B_PASSWORD", 2),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := kr.Open(s, ad)
			if err == nil {
				t.Fatalf("Open with another AD succeeded (%d bytes)", len(p))
			}
			if !errors.Is(err, ErrOpen) {
				t.Errorf("error %v is not ErrOpen", err)
			}
			checkNoLeak(t, err, secret)
		})
	}
}

func TestOpenTamperedFails(t *testing.T) {
	kr, _ := newKeyring(t)
	const secret = "tamper-me-please-123"
	ad := envy.AD("s", "N", 1)
	s, err := kr.Seal([]byte(secret), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s {
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(s)
			c[i] ^= bit
			p, err := kr.Open(c, ad)
			if err == nil {
				t.Fatalf("flipping bit %#x of byte %d: Open succeeded (%q)", bit, i, p)
			}
			checkNoLeak(t, err, secret)
		}
	}
	// Truncated and extended.
	for _, c := range [][]byte{nil, {}, s[:1], s[:headerSize], s[:len(s)-1], append(bytes.Clone(s), 0)} {
		if _, err := kr.Open(c, ad); err == nil {
			t.Fatalf("Open of %d bytes succeeded", len(c))
		} else {
			checkNoLeak(t, err, secret)
		}
	}
	// Unknown key id.
	c := bytes.Clone(s)
	c[4] = 9
	if _, err := kr.Open(c, ad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key id: error %v, want ErrUnknownKey", err)
	}
	// Unknown format.
	c = bytes.Clone(s)
	c[0] = 2
	if _, err := kr.Open(c, ad); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown format: error %v, want ErrMalformed", err)
	}
}

// checkNoLeak fails when err's text holds the plaintext or any key.
func checkNoLeak(t *testing.T, err error, secret string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, secret) {
		t.Errorf("error %q contains the plaintext", msg)
	}
	for _, frag := range []string{secret[:8], hex.EncodeToString([]byte(secret))[:16], base64.StdEncoding.EncodeToString([]byte(secret))[:12]} {
		if strings.Contains(msg, frag) {
			t.Errorf("error %q contains part of the plaintext", msg)
		}
	}
	if len(msg) > 200 {
		t.Errorf("error is suspiciously long (%d chars): %q", len(msg), msg)
	}
}

func TestKeyFileCreatedAndReused(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "envy-data")
	path := filepath.Join(dir, "master.key")
	mk, created, err := OpenMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != KeySize {
		t.Fatalf("key file holds %d bytes", fi.Size())
	}
	if runtime.GOOS != "windows" {
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("key file mode %04o, want 0600", m)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m := di.Mode().Perm(); m != 0o700 {
			t.Errorf("key dir mode %04o, want 0700", m)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".master-key-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	first, _ := os.ReadFile(path)

	ks := &memKeyStore{}
	kr, err := OpenKeyring(ctx, mk, ks)
	if err != nil {
		t.Fatal(err)
	}
	ad := envy.AD("app", "TOKEN", 1)
	sealed, err := kr.Seal([]byte("old value"), ad)
	if err != nil {
		t.Fatal(err)
	}
	mk.Close()
	if _, err := mk.Wrap(ctx, make([]byte, KeySize)); !errors.Is(err, ErrClosed) {
		t.Errorf("Wrap after Close: %v, want ErrClosed", err)
	}

	// Second start: the same file, the same store.
	mk2, created, err := OpenMasterKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mk2.Close()
	if created {
		t.Error("created = true for an existing key file")
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Fatal("key file changed on second open")
	}
	kr2, err := OpenKeyring(ctx, mk2, ks)
	if err != nil {
		t.Fatal(err)
	}
	if ks.nStores != 1 {
		t.Errorf("data keys stored %d times, want 1", ks.nStores)
	}
	got, err := kr2.Open(sealed, ad)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "old value" {
		t.Fatalf("got %q", got)
	}
}

func TestKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 16, 31, 33, 44, 64} {
		path := filepath.Join(dir, "key"+strconv.Itoa(n))
		if err := os.WriteFile(path, bytes.Repeat([]byte{'k'}, n), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := OpenMasterKeyFile(path)
		if err == nil {
			t.Fatalf("%d-byte key file accepted", n)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), strconv.Itoa(n)+" bytes") {
			t.Errorf("error %q does not name the file and its size", err)
		}
		if strings.Contains(err.Error(), "kkkk") {
			t.Errorf("error %q holds the file's content", err)
		}
	}
	if runtime.GOOS != "windows" {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
			path := filepath.Join(dir, "open"+strconv.FormatUint(uint64(mode), 8))
			if err := os.WriteFile(path, make([]byte, KeySize), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := OpenMasterKeyFile(path)
			if err == nil {
				t.Fatalf("key file with mode %04o accepted", mode)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("error %q does not name the file and the fix", err)
			}
		}
		// 0400 is fine.
		path := filepath.Join(dir, "readonly")
		if err := os.WriteFile(path, make([]byte, KeySize), 0o400); err != nil {
			t.Fatal(err)
		}
		if _, _, err := OpenMasterKeyFile(path); err != nil {
			t.Errorf("mode 0400: %v", err)
		}
	}
	// A directory.
	if _, _, err := OpenMasterKeyFile(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory as key file: %v", err)
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	mk1, _ := newFileKey(t)
	mk2, _ := newFileKey(t)
	ks := &memKeyStore{}
	if _, err := OpenKeyring(ctx, mk1, ks); err != nil {
		t.Fatal(err)
	}
	_, err := OpenKeyring(ctx, mk2, ks)
	if err == nil {
		t.Fatal("keyring opened with the wrong master key")
	}
	if !strings.Contains(err.Error(), "master key does not open data key 1: wrong master key?") {
		t.Errorf("unclear error: %v", err)
	}
	if ks.nStores != 1 {
		t.Errorf("store got %d data keys, want 1", ks.nStores)
	}
}

func TestBase64KeyURL(t *testing.T) {
	ctx := context.Background()
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.URLEncoding.EncodeToString(key[:])
	u := "base64key://" + b64

	mk, err := OpenMasterKeyURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	ks := &memKeyStore{}
	kr, err := OpenKeyring(ctx, mk, ks)
	if err != nil {
		t.Fatal(err)
	}
	mk.Close()
	ad := envy.AD("x", "Y", 1)
	sealed, err := kr.Seal([]byte("via kms"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.keys) != 1 || bytes.Contains(ks.keys[0].Wrapped, key[:]) {
		t.Fatal("data key not stored, or stored beside the master key")
	}

	// Reopen with the same URL: old ciphertexts open.
	mk2, err := OpenMasterKeyURL(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer mk2.Close()
	kr2, err := OpenKeyring(ctx, mk2, ks)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := kr2.Open(sealed, ad); err != nil || string(p) != "via kms" {
		t.Fatalf("reopen: %q, %v", p, err)
	}

	// Another key: a clear error.
	other, _ := localsecrets.NewRandomKey()
	mk3, err := OpenMasterKeyURL(ctx, "base64key://"+base64.URLEncoding.EncodeToString(other[:]))
	if err != nil {
		t.Fatal(err)
	}
	defer mk3.Close()
	_, err = OpenKeyring(ctx, mk3, ks)
	if err == nil || !strings.Contains(err.Error(), "master key does not open data key 1: wrong master key?") {
		t.Fatalf("wrong base64key: %v", err)
	}

	// A file master key does not open what a URL key wrapped.
	fk, _ := newFileKey(t)
	if _, err := OpenKeyring(ctx, fk, ks); err == nil || !strings.Contains(err.Error(), "wrong master key?") {
		t.Fatalf("file key on URL-wrapped data key: %v", err)
	}
}

func TestBadMasterKeyURL(t *testing.T) {
	ctx := context.Background()
	key, _ := localsecrets.NewRandomKey()
	b64 := base64.URLEncoding.EncodeToString(key[:])
	short := base64.URLEncoding.EncodeToString(key[:16])
	for _, tc := range []struct {
		url, scheme string
	}{
		{"base64key://" + short, "base64key"},                      // wrong size
		{"base64key://" + b64[:20] + "!!" + b64[22:], "base64key"}, // not base64
		{"base64key://" + b64 + "?foo=" + b64, "base64key"},        // bad parameter
		{"base64key://", "base64key"},                              // no key: refused, not random
		{"BASE64KEY://" + short, "base64key"},
		{"nosuchkms://" + b64, "nosuchkms"},
		{"base64key://" + b64 + "%zz", "base64key"}, // does not parse
		{"base64key://" + b64 + "\x7f", "base64key"},
		{b64, ""},
		{"", ""},
	} {
		_, err := OpenMasterKeyURL(ctx, tc.url)
		if err == nil {
			t.Errorf("%s URL accepted", tc.scheme)
			continue
		}
		msg := err.Error()
		for _, secret := range []string{b64, short, b64[:12], short[:12], b64[22:34]} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q holds key material", msg)
			}
		}
		if tc.scheme != "" && !strings.Contains(msg, `"`+tc.scheme+`"`) {
			t.Errorf("error %q does not name the scheme %q", msg, tc.scheme)
		}
	}
}

func TestConcurrentFirstStart(t *testing.T) {
	// Two servers sharing a store both find no data key; the one that
	// stores second must use the first one's key.
	ctx := context.Background()
	mk, _ := newFileKey(t)
	ks := &memKeyStore{}
	var other *Keyring
	ks.onAdd = func() {
		ks.onAdd = nil
		var err error
		other, err = OpenKeyring(ctx, mk, ks)
		if err != nil {
			t.Error(err)
		}
	}
	kr, err := OpenKeyring(ctx, mk, ks)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.keys) != 1 {
		t.Fatalf("store holds %d keys", len(ks.keys))
	}
	ad := envy.AD("a", "B", 1)
	s, _ := other.Seal([]byte("v"), ad)
	if p, err := kr.Open(s, ad); err != nil || string(p) != "v" {
		t.Fatalf("keyrings disagree: %v", err)
	}

	// A store that refuses writes: the error says so.
	bad := &memKeyStore{addErr: errors.New("disk full")}
	if _, err := OpenKeyring(ctx, mk, bad); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("store error: %v", err)
	}
}

func TestNewestKeySeals(t *testing.T) {
	ctx := context.Background()
	mk, _ := newFileKey(t)
	ks := &memKeyStore{}
	for _, id := range []uint32{1, 7, 3} {
		dk, err := newDataKey(ctx, mk, id)
		if err != nil {
			t.Fatal(err)
		}
		ks.keys = append(ks.keys, dk)
	}
	kr, err := OpenKeyring(ctx, mk, ks)
	if err != nil {
		t.Fatal(err)
	}
	if kr.NewestKeyID() != 7 {
		t.Fatalf("newest = %d", kr.NewestKeyID())
	}
	s, _ := kr.Seal([]byte("x"), nil)
	if s[0] != sealFormat || s[1] != 0 || s[2] != 0 || s[3] != 0 || s[4] != 7 {
		t.Fatalf("header % x, want 01 00000007", s[:5])
	}
	if got := fmt.Sprint(kr.KeyIDs()); got != "[1 3 7]" {
		t.Errorf("KeyIDs = %s", got)
	}
	ks.keys = append(ks.keys, ks.keys[0])
	if _, err := OpenKeyring(ctx, mk, ks); err == nil {
		t.Error("duplicate data key id accepted")
	}
}

func TestReady(t *testing.T) {
	kr, _ := newKeyring(t)
	if err := kr.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := kr.Ready(ctx); err == nil {
		t.Error("Ready with a cancelled context succeeded")
	}
	var nilKR *Keyring
	if err := nilKR.Ready(context.Background()); err == nil {
		t.Error("nil keyring is ready")
	}
}

func TestConcurrentSealOpen(t *testing.T) {
	kr, _ := newKeyring(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ad := envy.AD("s", "N", int64(i))
				v := []byte(fmt.Sprintf("value-%d-%d", g, i))
				s, err := kr.Seal(v, ad)
				if err != nil {
					t.Error(err)
					return
				}
				p, err := kr.Open(s, ad)
				if err != nil || !bytes.Equal(p, v) {
					t.Errorf("round trip: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestImports enforces the package doc: no net/http, no storage or HTTP
// package of this module.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case p == "net/http", strings.HasPrefix(p, "net/http/"):
				t.Errorf("%s imports %s", name, p)
			case strings.HasPrefix(p, "github.com/envy-dev/envy/"):
				t.Errorf("%s imports %s: only the domain package is allowed", name, p)
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	kr, _ := newKeyring(f)
	ad := envy.AD("fuzz", "VAR", 1)
	for _, v := range []string{"", "a", "hello, world", strings.Repeat("z", 300)} {
		s, err := kr.Seal([]byte(v), ad)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Add(make([]byte, headerSize+tagSize))
	f.Fuzz(func(t *testing.T, sealed []byte) {
		p, err := kr.Open(sealed, ad)
		if err != nil {
			if p != nil {
				t.Fatal("Open returned a value with an error")
			}
			if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Only a real seal opens: sealing again must give the same value.
		s2, err := kr.Seal(p, ad)
		if err != nil {
			t.Fatal(err)
		}
		if p2, err := kr.Open(s2, ad); err != nil || !bytes.Equal(p, p2) {
			t.Fatal("reseal round trip failed")
		}
	})
}

func benchKeyring(b *testing.B) *Keyring {
	kr, _ := newKeyring(b)
	return kr
}

func BenchmarkSeal64(b *testing.B) {
	kr := benchKeyring(b)
	v := bytes.Repeat([]byte("v"), 64)
	ad := envy.AD("team/prod/api", "DATABASE_URL", 12)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal(v, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen64(b *testing.B) {
	kr := benchKeyring(b)
	v := bytes.Repeat([]byte("v"), 64)
	ad := envy.AD("team/prod/api", "DATABASE_URL", 12)
	s, err := kr.Seal(v, ad)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(s, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealParallel64(b *testing.B) {
	kr := benchKeyring(b)
	v := bytes.Repeat([]byte("v"), 64)
	ad := envy.AD("team/prod/api", "DATABASE_URL", 12)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := kr.Seal(v, ad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOpenAppend opens several values one after the other into one buffer,
// as a read of a whole env does, and checks that a value that does not
// open leaves the buffer as it was.
func TestOpenAppend(t *testing.T) {
	kr, _ := newKeyring(t)
	var sealed [][]byte
	var want []byte
	for i := range 5 {
		pt := []byte(fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i*7)))
		s, err := kr.Seal(pt, envy.AD("s", fmt.Sprint("N", i), 1))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
		want = append(want, pt...)
	}
	buf := []byte("prefix:")
	want = append([]byte("prefix:"), want...)
	for i, s := range sealed {
		var err error
		if buf, err = kr.OpenAppend(buf, s, envy.AD("s", fmt.Sprint("N", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(buf, want) {
		t.Fatalf("OpenAppend gave %q, want %q", buf, want)
	}
	out, err := kr.OpenAppend(buf, sealed[0], envy.AD("s", "other", 1))
	if !errors.Is(err, ErrOpen) || !bytes.Equal(out, want) {
		t.Fatalf("OpenAppend with the wrong ad = %q, %v; want the buffer unchanged and ErrOpen", out, err)
	}
}
