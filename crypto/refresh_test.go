package crypto

import (
	"context"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// notifier is an in-memory envy.Notifier, standing in for a store.
type notifier struct{ envy.Broadcast }

func (*notifier) Shared() bool { return true }

func TestAKeyringPicksUpDataKeysAddedLater(t *testing.T) {
	ctx := context.Background()
	mk, _ := newFileKey(t)
	ks := &memKeyStore{}
	old, err := OpenKeyring(ctx, mk, ks) // creates key 1
	if err != nil {
		t.Fatal(err)
	}
	// Another server adds key 2 and seals with it.
	dk, err := newDataKey(ctx, mk, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.AddDataKey(ctx, dk); err != nil {
		t.Fatal(err)
	}
	other, err := OpenKeyring(ctx, mk, ks)
	if err != nil {
		t.Fatal(err)
	}
	ad := envy.AD("app", "A", 1)
	sealed, err := other.Seal([]byte("under key 2"), ad)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a value under a key it lacks makes it look again", func(t *testing.T) {
		got, err := old.Open(sealed, ad)
		if err != nil || string(got) != "under key 2" {
			t.Fatalf("Open = %q, %v", got, err)
		}
	})

	t.Run("a notice makes it seal with the newest key", func(t *testing.T) {
		dk3, err := newDataKey(ctx, mk, 3)
		if err != nil {
			t.Fatal(err)
		}
		n := &notifier{}
		cancel := old.Follow(n, func(err error) { t.Error(err) })
		defer cancel()
		if err := ks.AddDataKey(ctx, dk3); err != nil {
			t.Fatal(err)
		}
		n.Publish(envy.Notice{Kind: envy.NoticeDataKey, KeyID: 3})
		deadline := time.Now().Add(10 * time.Second)
		for old.NewestKeyID() != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("newest key = %d after the notice, want 3", old.NewestKeyID())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
