// Package crypto is envy's envelope encryption: a master key (a local key
// file or a gocloud.dev/secrets KMS URL) wraps the data keys, which the
// store keeps; the Keyring unwraps them once, keeps them in memory and
// seals and opens values with AES-256-GCM, binding each ciphertext to its
// scope, name and version through the additional data (envy.AD).
//
// It implements envy.Keyring and imports only the domain package, the
// standard library and gocloud.dev/secrets with its drivers. It must never
// import net/http or the storage packages (sqlite, postgres, …): a test
// checks this. No error of this package ever holds a plaintext value, a
// key or a master key URL.
package crypto

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
)

// KeyStore keeps wrapped data keys. envy.Store satisfies it.
type KeyStore interface {
	DataKeys(ctx context.Context) ([]envy.DataKey, error)
	AddDataKey(ctx context.Context, k envy.DataKey) error
}

// Sealed value layout: format | key id (4 bytes, big endian) | nonce | ciphertext+tag.
const (
	sealFormat byte = 1
	idSize          = 4
	nonceSize       = 12
	tagSize         = 16
	headerSize      = 1 + idSize + nonceSize
)

// Errors of Open. Their text never holds a value or a key.
var (
	ErrMalformed  = errors.New("crypto: sealed value is malformed")
	ErrUnknownKey = errors.New("crypto: sealed value names an unknown data key")
	ErrOpen       = errors.New("crypto: sealed value does not open (wrong additional data, or corrupted)")
)

// ErrWrongMasterKey is the error of OpenKeyring and Refresh when the
// master key does not open a data key of the store.
var ErrWrongMasterKey = errors.New("wrong master key")

// Keyring holds the unwrapped data keys, as AEADs built once. It is safe
// for concurrent use. It keeps the master key and the key store, so that a
// data key added later (by `keys rotate`, or by another server sharing the
// store) is picked up: on a NoticeDataKey (see Follow), and on demand when
// a value names a key it does not hold yet.
type Keyring struct {
	mk MasterKey // under refreshMu once the keyring is open
	ks KeyStore

	// mkOwned: mk came from Rotate or reopen, so the keyring closes it
	// when it replaces it or is closed. reopen, when set, opens the master
	// key again from where the server got it (see SetReopen). Both under
	// refreshMu.
	mkOwned bool
	reopen  func(ctx context.Context) (MasterKey, error)

	// stale is the error of the last refresh when the store held a data
	// key that the master key does not open; nil once one succeeds.
	stale atomic.Pointer[error]

	state atomic.Pointer[keyState]

	refreshMu    sync.Mutex // one refresh at a time
	lastOnDemand time.Time  // under refreshMu: on-demand refreshes are rate-limited
}

// keyState is one immutable set of unwrapped keys; a refresh replaces it.
type keyState struct {
	aeads  map[uint32]cipher.AEAD
	newest uint32
	seal   cipher.AEAD // aeads[newest]
}

var (
	_ envy.Keyring      = (*Keyring)(nil)
	_ envy.AppendOpener = (*Keyring)(nil)
)

// OpenKeyring loads the data keys from ks and unwraps them with mk. When
// ks has none, it generates a data key, wraps it with mk and stores it as
// key 1. The keyring keeps mk to unwrap keys added later: close mk only
// once the keyring is no longer used.
func OpenKeyring(ctx context.Context, mk MasterKey, ks KeyStore) (*Keyring, error) {
	dks, err := ks.DataKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: load data keys: %w", err)
	}
	if len(dks) == 0 {
		dk, err := newDataKey(ctx, mk, 1)
		if err != nil {
			return nil, err
		}
		if err := ks.AddDataKey(ctx, dk); err != nil {
			// Another server sharing the store may have added key 1 first:
			// use what the store holds now.
			dks2, err2 := ks.DataKeys(ctx)
			if err2 != nil || len(dks2) == 0 {
				return nil, fmt.Errorf("keyring: store data key 1: %w", err)
			}
			dks = dks2
		} else {
			dks = []envy.DataKey{dk}
		}
	}
	kr := &Keyring{mk: mk, ks: ks}
	st, err := kr.unwrap(ctx, nil, dks)
	if err != nil {
		return nil, err
	}
	kr.state.Store(st)
	return kr, nil
}

// unwrap returns a state with the keys of prev plus those of dks that prev
// lacks.
func (kr *Keyring) unwrap(ctx context.Context, prev *keyState, dks []envy.DataKey) (*keyState, error) {
	st := &keyState{aeads: make(map[uint32]cipher.AEAD, len(dks))}
	if prev != nil {
		maps.Copy(st.aeads, prev.aeads)
		st.newest = prev.newest
	}
	seen := make(map[uint32]bool, len(dks))
	for _, dk := range dks {
		if seen[dk.ID] {
			return nil, fmt.Errorf("keyring: data key %d is stored twice", dk.ID)
		}
		seen[dk.ID] = true
		if _, ok := st.aeads[dk.ID]; ok {
			continue
		}
		raw, err := kr.mk.Unwrap(ctx, dk.Wrapped)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("keyring: unwrap data key %d: %w", dk.ID, ctxErr)
			}
			return nil, fmt.Errorf("keyring: master key does not open data key %d: %w? (%v)", dk.ID, ErrWrongMasterKey, err)
		}
		aead, err := newAEAD(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("keyring: data key %d: %w", dk.ID, err)
		}
		st.aeads[dk.ID] = aead
		if len(st.aeads) == 1 || dk.ID > st.newest {
			st.newest = dk.ID
		}
	}
	st.seal = st.aeads[st.newest]
	return st, nil
}

// Refresh loads the data keys that were added to the store since the
// keyring last looked, and seals with the newest from then on.
func (kr *Keyring) Refresh(ctx context.Context) error {
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	return kr.refreshLocked(ctx)
}

func (kr *Keyring) refreshLocked(ctx context.Context) error {
	dks, err := kr.ks.DataKeys(ctx)
	if err != nil {
		return fmt.Errorf("keyring: load data keys: %w", err)
	}
	st, err := kr.unwrap(ctx, kr.state.Load(), dks)
	if errors.Is(err, ErrWrongMasterKey) && kr.reopen != nil {
		st, err = kr.unwrapReopened(ctx, dks)
	}
	if err != nil {
		if errors.Is(err, ErrWrongMasterKey) {
			kr.stale.Store(&err)
		}
		return err
	}
	kr.stale.Store(nil)
	kr.state.Store(st)
	return nil
}

// Follow makes the keyring refresh whenever n says a data key was added,
// or that notices may have been lost. It returns the cancel of the
// subscription.
func (kr *Keyring) Follow(n envy.Notifier, onErr func(error)) (cancel func()) {
	return n.Subscribe(func(nt envy.Notice) {
		if nt.Kind != envy.NoticeDataKey && nt.Kind != envy.NoticeResync {
			return
		}
		go func() { // never on the notifier's goroutine: this reads the store
			ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
			defer cancel()
			if err := kr.Refresh(ctx); err != nil && onErr != nil {
				onErr(err)
			}
		}()
	})
}

// refreshTimeout bounds a refresh; onDemandEvery rate-limits the refreshes
// that a value sealed under an unknown key causes.
const (
	refreshTimeout = 10 * time.Second
	onDemandEvery  = time.Second
)

// aeadFor returns the AEAD of key id, refreshing once from the store when
// the keyring does not hold it (another server may have just added it).
func (kr *Keyring) aeadFor(id uint32) (cipher.AEAD, bool) {
	if aead, ok := kr.state.Load().aeads[id]; ok {
		return aead, true
	}
	if kr.ks == nil {
		return nil, false
	}
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	if aead, ok := kr.state.Load().aeads[id]; ok {
		return aead, true // a refresh that ran meanwhile found it
	}
	if time.Since(kr.lastOnDemand) < onDemandEvery {
		return nil, false
	}
	kr.lastOnDemand = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	if kr.refreshLocked(ctx) != nil {
		return nil, false
	}
	aead, ok := kr.state.Load().aeads[id]
	return aead, ok
}

// newDataKey makes a random data key and wraps it with mk.
func newDataKey(ctx context.Context, mk MasterKey, id uint32) (envy.DataKey, error) {
	raw := make([]byte, KeySize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return envy.DataKey{}, fmt.Errorf("keyring: generate data key %d: %w", id, err)
	}
	wrapped, err := mk.Wrap(ctx, raw)
	if err != nil {
		return envy.DataKey{}, fmt.Errorf("keyring: wrap data key %d: %w", id, err)
	}
	return envy.DataKey{ID: id, Wrapped: wrapped, CreatedAt: time.Now().UTC()}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("unwrapped to %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// KeyIDs returns the ids of the data keys, in ascending order.
func (kr *Keyring) KeyIDs() []uint32 {
	return slices.Sorted(maps.Keys(kr.state.Load().aeads))
}

// NewestKeyID returns the id of the data key that Seal uses.
func (kr *Keyring) NewestKeyID() uint32 { return kr.state.Load().newest }

// Seal encrypts plaintext under the newest data key, binding it to ad.
func (kr *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	st := kr.state.Load()
	out[0] = sealFormat
	binary.BigEndian.PutUint32(out[1:1+idSize], st.newest)
	nonce := out[1+idSize : headerSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("crypto: seal: read random nonce: %w", err)
	}
	return st.seal.Seal(out, nonce, plaintext, ad), nil
}

// Open decrypts a value sealed by Seal with the same ad. Its errors are
// ErrMalformed, ErrUnknownKey or ErrOpen, possibly wrapped; none holds
// any part of the value or of a key.
func (kr *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	pt, err := kr.OpenAppend(nil, sealed, ad)
	if err == nil && pt == nil {
		pt = []byte{}
	}
	return pt, err
}

// OpenAppend is Open appending the plaintext to dst, so that a caller
// opening many values can use one buffer (envy.AppendOpener). dst must not
// overlap sealed.
func (kr *Keyring) OpenAppend(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < headerSize+tagSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(sealed))
	}
	if sealed[0] != sealFormat {
		return nil, fmt.Errorf("%w: unknown format %d", ErrMalformed, sealed[0])
	}
	id := binary.BigEndian.Uint32(sealed[1 : 1+idSize])
	aead, ok := kr.aeadFor(id)
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, id)
	}
	out, err := aead.Open(dst, sealed[1+idSize:headerSize], sealed[headerSize:], ad)
	if err != nil {
		return dst, ErrOpen
	}
	return out, nil
}

// probe is what Ready seals and opens.
var probe = []byte("envy readiness probe")

// Ready checks that the keyring seals and opens, for /readyz. It uses the
// data keys in memory and makes no call to the master key (a KMS).
func (kr *Keyring) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if kr == nil || kr.state.Load() == nil {
		return errors.New("crypto: keyring not open")
	}
	ad := envy.AD("envy/readyz", "probe", 1)
	s, err := kr.Seal(probe, ad)
	if err != nil {
		return fmt.Errorf("crypto: keyring not ready: %w", err)
	}
	p, err := kr.Open(s, ad)
	if err != nil {
		return fmt.Errorf("crypto: keyring not ready: %w", err)
	}
	if !bytes.Equal(p, probe) {
		return errors.New("crypto: keyring not ready: probe did not round-trip")
	}
	return nil
}
