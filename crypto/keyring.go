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

// Keyring holds the unwrapped data keys, as AEADs built once. It is safe
// for concurrent use.
type Keyring struct {
	aeads  map[uint32]cipher.AEAD
	newest uint32
	seal   cipher.AEAD // aeads[newest]
}

var _ envy.Keyring = (*Keyring)(nil)

// OpenKeyring loads the data keys from ks and unwraps them with mk, once.
// When ks has none, it generates a data key, wraps it with mk and stores it
// as key 1. mk is not kept: the caller may close it once this returns.
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
	kr := &Keyring{aeads: make(map[uint32]cipher.AEAD, len(dks))}
	for _, dk := range dks {
		if _, dup := kr.aeads[dk.ID]; dup {
			return nil, fmt.Errorf("keyring: data key %d is stored twice", dk.ID)
		}
		raw, err := mk.Unwrap(ctx, dk.Wrapped)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("keyring: unwrap data key %d: %w", dk.ID, ctxErr)
			}
			return nil, fmt.Errorf("keyring: master key does not open data key %d: wrong master key? (%w)", dk.ID, err)
		}
		aead, err := newAEAD(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("keyring: data key %d: %w", dk.ID, err)
		}
		kr.aeads[dk.ID] = aead
		if len(kr.aeads) == 1 || dk.ID > kr.newest {
			kr.newest = dk.ID
		}
	}
	kr.seal = kr.aeads[kr.newest]
	return kr, nil
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
	return slices.Sorted(maps.Keys(kr.aeads))
}

// NewestKeyID returns the id of the data key that Seal uses.
func (kr *Keyring) NewestKeyID() uint32 { return kr.newest }

// Seal encrypts plaintext under the newest data key, binding it to ad.
func (kr *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = sealFormat
	binary.BigEndian.PutUint32(out[1:1+idSize], kr.newest)
	nonce := out[1+idSize : headerSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("crypto: seal: read random nonce: %w", err)
	}
	return kr.seal.Seal(out, nonce, plaintext, ad), nil
}

// Open decrypts a value sealed by Seal with the same ad. Its errors are
// ErrMalformed, ErrUnknownKey or ErrOpen, possibly wrapped; none holds
// any part of the value or of a key.
func (kr *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < headerSize+tagSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(sealed))
	}
	if sealed[0] != sealFormat {
		return nil, fmt.Errorf("%w: unknown format %d", ErrMalformed, sealed[0])
	}
	id := binary.BigEndian.Uint32(sealed[1 : 1+idSize])
	aead, ok := kr.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, id)
	}
	pt, err := aead.Open(nil, sealed[1+idSize:headerSize], sealed[headerSize:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// probe is what Ready seals and opens.
var probe = []byte("envy readiness probe")

// Ready checks that the keyring seals and opens, for /readyz. It uses the
// data keys in memory and makes no call to the master key (a KMS).
func (kr *Keyring) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if kr == nil || kr.seal == nil {
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
