package crypto

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/envy-dev/envy"
)

// KeyRewrapper is a KeyStore that can move its data keys to another
// master key. Both envy stores implement it.
type KeyRewrapper interface {
	KeyStore
	// RewrapDataKeys replaces, in one transaction, the wrapped bytes of
	// every data key (rewrapped must name exactly the keys the store
	// holds, else EConflict) and adds the keys in added.
	RewrapDataKeys(ctx context.Context, rewrapped, added []envy.DataKey) error
}

// RetiredKeyStore is a KeyStore that keeps a check of every master key a
// rotation retired: what the key wraps of retiredMarker. Both envy stores
// implement it.
type RetiredKeyStore interface {
	AddRetiredMasterKey(ctx context.Context, k envy.RetiredMasterKey) error
	RetiredMasterKeys(ctx context.Context) ([]envy.RetiredMasterKey, error)
}

// retiredMarker is what a retired master key's check wraps: a fixed value,
// so that the check tells the key again and holds nothing secret.
var retiredMarker = sha256.Sum256([]byte("envy: a master key retired by envy keys rotate"))

// RetiredAt reports whether mk is a master key that a rotation of ks
// retired, and when: the data keys it no longer opens were moved to a
// newer master key.
func RetiredAt(ctx context.Context, mk MasterKey, ks KeyStore) (time.Time, bool) {
	rs, ok := ks.(RetiredKeyStore)
	if !ok {
		return time.Time{}, false
	}
	retired, err := rs.RetiredMasterKeys(ctx)
	if err != nil {
		return time.Time{}, false
	}
	for i := len(retired) - 1; i >= 0; i-- {
		got, err := mk.Unwrap(ctx, retired[i].Check)
		if err == nil && subtle.ConstantTimeCompare(got, retiredMarker[:]) == 1 {
			return retired[i].RetiredAt, true
		}
	}
	return time.Time{}, false
}

// RotateResult tells what Rotate did.
type RotateResult struct {
	Rewrapped []uint32 // the ids of the data keys now wrapped by the new master key
	Added     uint32   // the id of the new data key, 0 when none was added
}

// Rotate moves every data key of the store to newMK: it unwraps each with
// the current master key, wraps it with newMK and stores them all in one
// transaction. With addDataKey it also adds a new data key, wrapped by
// newMK, that seals every value written from then on; values sealed under
// the older keys stay readable. The keyring uses newMK from then on and
// owns it (Close closes it). Values are not resealed: the data keys stay
// the same, only their wrapping changes.
//
// Reads and writes go on meanwhile: the keyring keeps its data keys in
// memory and swaps in the new one at once. Other servers sharing the
// store hear of the change through the store's notices (see Follow); one
// that can't open the new data key with its master key opens its master
// key again (SetReopen) and retries.
//
// Every check (each new wrapping opens with newMK, the new data key's
// too) runs before the one transaction that stores the keys, and nothing
// can fail after it: Rotate returns an error only when nothing changed
// (the store's keys are still under the current master key, which the
// keyring keeps), and then newMK stays the caller's to close; once it
// returns nil, the keyring owns newMK.
func (kr *Keyring) Rotate(ctx context.Context, newMK MasterKey, addDataKey bool) (RotateResult, error) {
	rw, ok := kr.ks.(KeyRewrapper)
	if !ok {
		return RotateResult{}, errors.New("keyring: this store can't rewrap its data keys")
	}
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	dks, err := kr.ks.DataKeys(ctx)
	if err != nil {
		return RotateResult{}, fmt.Errorf("keyring: load data keys: %w", err)
	}
	var (
		res       RotateResult
		rewrapped []envy.DataKey
		newest    uint32
		// The AEADs of the data keys the keyring does not hold yet (one
		// another server added), built from the bytes in hand.
		aeads map[uint32]cipher.AEAD
	)
	rewrap := func() error {
		res, rewrapped, newest, aeads = RotateResult{}, make([]envy.DataKey, 0, len(dks)), 0, make(map[uint32]cipher.AEAD)
		held := kr.state.Load().aeads
		for _, dk := range dks {
			_, ok := held[dk.ID]
			aead, err := kr.rewrapOne(ctx, dk, newMK, &rewrapped, !ok)
			if err != nil {
				return err
			}
			if aead != nil {
				aeads[dk.ID] = aead
			}
			res.Rewrapped = append(res.Rewrapped, dk.ID)
			newest = max(newest, dk.ID)
		}
		return nil
	}
	err = rewrap()
	if errors.Is(err, ErrWrongMasterKey) && kr.reopen != nil {
		// Another server rotated the keys and the operator put its new
		// master key where this one opens it from (Follow may not have
		// looked yet): open it again, as a refresh would, and go on.
		if st, rerr := kr.unwrapReopened(ctx, dks); rerr == nil {
			kr.stale.Store(nil)
			kr.state.Store(st)
			err = rewrap()
		}
	}
	if err != nil {
		return RotateResult{}, err
	}
	var added []envy.DataKey
	if addDataKey {
		dk, aead, err := newCheckedDataKey(ctx, newMK, newest+1)
		if err != nil {
			return RotateResult{}, err
		}
		added = append(added, dk)
		aeads[dk.ID] = aead
		res.Added = dk.ID
	}
	// The current key's check is kept first: a server started with it
	// later can say it was retired. A rotation that then fails leaves a
	// check of a key still in use, which is only read when a key fails.
	if rs, ok := kr.ks.(RetiredKeyStore); ok {
		check, err := kr.mk.Wrap(ctx, retiredMarker[:])
		if err != nil {
			return RotateResult{}, fmt.Errorf("keyring: wrap the retired master key's check: %w", err)
		}
		if err := rs.AddRetiredMasterKey(ctx, envy.RetiredMasterKey{Check: check, RetiredAt: time.Now()}); err != nil {
			return RotateResult{}, fmt.Errorf("keyring: keep the retired master key's check: %w", err)
		}
	}
	if err := rw.RewrapDataKeys(ctx, rewrapped, added); err != nil && !kr.storedAnyway(ctx, rewrapped, added) {
		return RotateResult{}, fmt.Errorf("keyring: store the rewrapped data keys: %w", err)
	}
	// Committed: from here on nothing may fail (a failure would report a
	// rotation that happened as failed, and the caller would close the
	// master key the store's keys are now under). Every AEAD is built
	// already: no call to the master key (a KMS, the request's context).
	kr.setMasterKey(newMK)
	kr.state.Store(withKeys(kr.state.Load(), aeads))
	slices.Sort(res.Rewrapped)
	return res, nil
}

// storedAnyway reports whether the store holds exactly the keys of a
// rewrap whose call failed: a commit whose answer was lost (the request's
// context ended while it ran, the connection broke) may have happened.
// Each wrapping is new random bytes, so equal bytes are this rewrap's. It
// reads with a context of its own, as the request's may have ended.
func (kr *Keyring) storedAnyway(ctx context.Context, rewrapped, added []envy.DataKey) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	dks, err := kr.ks.DataKeys(ctx)
	if err != nil || len(dks) != len(rewrapped)+len(added) {
		return false
	}
	want := make(map[uint32][]byte, len(dks))
	for _, k := range append(slices.Clone(rewrapped), added...) {
		want[k.ID] = k.Wrapped
	}
	for _, k := range dks {
		if w, ok := want[k.ID]; !ok || !bytes.Equal(w, k.Wrapped) {
			return false
		}
	}
	return true
}

// Owns reports whether the keyring holds mk as its own master key (Rotate
// adopted it, or it opened it again): then the keyring closes it, and the
// caller must not.
func (kr *Keyring) Owns(mk MasterKey) bool {
	if mk == nil || !reflect.TypeOf(mk).Comparable() {
		return false
	}
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	return kr.mkOwned && kr.mk == mk
}

// withKeys returns a state with the keys of prev plus aeads; the newest
// of them all seals.
func withKeys(prev *keyState, aeads map[uint32]cipher.AEAD) *keyState {
	if len(aeads) == 0 {
		return prev
	}
	st := &keyState{aeads: maps.Clone(prev.aeads), newest: prev.newest}
	for id, aead := range aeads {
		st.aeads[id] = aead
		st.newest = max(st.newest, id)
	}
	st.seal = st.aeads[st.newest]
	return st
}

// newCheckedDataKey makes a random data key wrapped by mk, checks that mk
// opens what it wrapped, and returns it with its AEAD, built from the raw
// bytes in hand.
func newCheckedDataKey(ctx context.Context, mk MasterKey, id uint32) (envy.DataKey, cipher.AEAD, error) {
	raw := make([]byte, KeySize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return envy.DataKey{}, nil, fmt.Errorf("keyring: generate data key %d: %w", id, err)
	}
	wrapped, err := mk.Wrap(ctx, raw)
	if err != nil {
		return envy.DataKey{}, nil, fmt.Errorf("keyring: wrap data key %d: %w", id, err)
	}
	back, err := mk.Unwrap(ctx, wrapped)
	if err != nil {
		return envy.DataKey{}, nil, fmt.Errorf("keyring: the new master key does not open what it wrapped (data key %d): %w", id, err)
	}
	same := subtle.ConstantTimeCompare(back, raw) == 1
	clear(back)
	if !same {
		return envy.DataKey{}, nil, fmt.Errorf("keyring: the new master key opens data key %d to other bytes", id)
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return envy.DataKey{}, nil, fmt.Errorf("keyring: data key %d: %w", id, err)
	}
	return envy.DataKey{ID: id, Wrapped: wrapped, CreatedAt: time.Now().UTC()}, aead, nil
}

// setMasterKey makes mk the keyring's master key, owned by the keyring;
// it closes the one it replaces when it owned it. Under refreshMu.
func (kr *Keyring) setMasterKey(mk MasterKey) {
	if kr.mkOwned && kr.mk != nil {
		kr.mk.Close()
	}
	kr.mk, kr.mkOwned = mk, true
}

// rewrapOne unwraps dk with the master key in hand, wraps it with newMK,
// checks that newMK opens it to the same bytes, and appends it to out.
// With build, it also returns the key's AEAD (for a key the keyring does
// not hold yet).
func (kr *Keyring) rewrapOne(ctx context.Context, dk envy.DataKey, newMK MasterKey, out *[]envy.DataKey, build bool) (cipher.AEAD, error) {
	raw, err := kr.mk.Unwrap(ctx, dk.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("keyring: the current master key does not open data key %d (was it rotated by another server? restart this one with the new key): %w", dk.ID, ErrWrongMasterKey)
	}
	defer clear(raw)
	w, err := newMK.Wrap(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("keyring: wrap data key %d with the new master key: %w", dk.ID, err)
	}
	// The new wrapping must open with the new key before the old one is
	// given up.
	back, err := newMK.Unwrap(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("keyring: the new master key does not open what it wrapped (data key %d): %w", dk.ID, err)
	}
	same := subtle.ConstantTimeCompare(back, raw) == 1
	clear(back)
	if !same {
		return nil, fmt.Errorf("keyring: the new master key opens data key %d to other bytes", dk.ID)
	}
	var aead cipher.AEAD
	if build {
		if aead, err = newAEAD(raw); err != nil {
			return nil, fmt.Errorf("keyring: data key %d: %w", dk.ID, err)
		}
	}
	*out = append(*out, envy.DataKey{ID: dk.ID, Wrapped: w, CreatedAt: dk.CreatedAt})
	return aead, nil
}

// SetReopen tells the keyring how to open its master key again, from
// where the server got it (a key file that an operator replaced, a KMS
// URL): when the store holds a data key that the master key in hand does
// not open (another server rotated the keys), the keyring opens the master
// key again and, if that one opens every data key, uses it from then on.
func (kr *Keyring) SetReopen(reopen func(ctx context.Context) (MasterKey, error)) {
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	kr.reopen = reopen
}

// unwrapReopened opens the master key again and unwraps dks with it. Under
// refreshMu.
func (kr *Keyring) unwrapReopened(ctx context.Context, dks []envy.DataKey) (*keyState, error) {
	mk, err := kr.reopen(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: a data key does not open with the master key in hand, and opening the master key again failed: %w", err)
	}
	old := kr.mk
	kr.mk = mk
	st, err := kr.unwrap(ctx, kr.state.Load(), dks)
	kr.mk = old
	if err != nil {
		mk.Close()
		return nil, err
	}
	kr.setMasterKey(mk)
	return st, nil
}

// Usable reports whether the keyring opens every data key of the store as
// far as it last looked: an error when the store holds a key that the
// master key in hand does not open (another server added it under a new
// master key that this one has not got), so that /readyz takes the server
// out of service instead of letting it fail reads of values sealed under
// that key. While it fails it looks again, at most once a second, so the
// server comes back by itself once its master key is put right.
func (kr *Keyring) Usable(ctx context.Context) error {
	p := kr.stale.Load()
	if p == nil {
		return nil
	}
	if kr.refreshMu.TryLock() {
		if time.Since(kr.lastOnDemand) >= onDemandEvery {
			kr.lastOnDemand = time.Now()
			kr.refreshLocked(ctx)
		}
		kr.refreshMu.Unlock()
		if p = kr.stale.Load(); p == nil {
			return nil
		}
	}
	return *p
}

// Close closes the master key when the keyring owns it (it came from
// Rotate or from opening it again); the one given to OpenKeyring stays the
// caller's to close.
func (kr *Keyring) Close() error {
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	if kr.mkOwned && kr.mk != nil {
		kr.mkOwned = false
		return kr.mk.Close()
	}
	return nil
}

// MasterKeyFromBytes returns a master key file's key from its 32 bytes, as
// OpenMasterKeyFile would read them from a file; name stands for the file
// in errors. It is how a server gets a new key file's key for Rotate.
func MasterKeyFromBytes(key []byte, name string) (MasterKey, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key %s: holds %d bytes, want exactly %d", name, len(key), KeySize)
	}
	return fileKeyOf(key, name)
}

// ReadMasterKeyFile opens the master key in the file at path, as
// OpenMasterKeyFile does, but never creates one.
func ReadMasterKeyFile(path string) (MasterKey, error) {
	key, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return fileKeyOf(key, path)
}

// Resealer is a store whose values a rotation can seal again under the
// newest data key, and whose older data keys it can then retire. Both envy
// stores implement it.
type Resealer interface {
	// SealedNotUnder returns up to limit stored values (current and
	// history) sealed under a data key other than keep.
	SealedNotUnder(ctx context.Context, keep uint32, limit int) ([]envy.SealedValue, error)
	// ReplaceSealed puts each value's New bytes in place of its Sealed
	// ones where they are still those, and says how many it replaced.
	ReplaceSealed(ctx context.Context, vs []envy.SealedValue) (int, error)
	// RetireDataKeys deletes every data key but keep when no value is
	// sealed under them (EConflict otherwise), and returns their ids.
	RetireDataKeys(ctx context.Context, keep uint32) ([]uint32, error)
}

// ResealResult tells what Reseal did.
type ResealResult struct {
	Resealed int      // values sealed again under the newest data key
	Retired  []uint32 // the older data keys deleted from the store
}

// resealBatch is how many values Reseal seals again per transaction.
const resealBatch = 500

// Reseal seals every value of the store that is sealed under an older
// data key again under the newest one, a batch per transaction, while the
// server serves (the plaintext is the same, so readers see no change),
// then deletes the older data keys from the store. Servers that are
// running keep those keys in memory, so values they cached under them
// stay readable until they restart, and a restart reads the resealed
// values. A value written meanwhile under an older key (by a server that
// had not yet picked up the newest) is resealed in a later pass; if
// values under older keys remain, the keys stay and Reseal says so.
func (kr *Keyring) Reseal(ctx context.Context, rs Resealer) (ResealResult, error) {
	var res ResealResult
	keep := kr.NewestKeyID()
	for {
		vs, err := rs.SealedNotUnder(ctx, keep, resealBatch)
		if err != nil {
			return res, err
		}
		if len(vs) == 0 {
			break
		}
		for i := range vs {
			v := &vs[i]
			ad := envy.AD(v.Scope, v.Name, v.Version)
			pt, err := kr.Open(v.Sealed, ad)
			if err != nil {
				return res, fmt.Errorf("keyring: reseal %s in scope %s (version %d): %w", v.Name, v.Scope, v.Version, err)
			}
			v.New, err = kr.sealWith(keep, pt, ad)
			clear(pt)
			if err != nil {
				return res, err
			}
		}
		n, err := rs.ReplaceSealed(ctx, vs)
		if err != nil {
			return res, err
		}
		res.Resealed += n
		if n == 0 {
			break // every one changed meanwhile: let the retirement say what is left
		}
	}
	retired, err := rs.RetireDataKeys(ctx, keep)
	if err != nil {
		return res, fmt.Errorf("keyring: %d values resealed, but the older data keys stay: %w", res.Resealed, err)
	}
	res.Retired = retired
	return res, nil
}

// sealWith seals under data key id, which must be the newest: a key added
// while Reseal runs would otherwise make it reseal forever.
func (kr *Keyring) sealWith(id uint32, plaintext, ad []byte) ([]byte, error) {
	if kr.NewestKeyID() != id {
		return nil, errors.New("keyring: a newer data key was added during the reseal: run it again")
	}
	return kr.Seal(plaintext, ad)
}
