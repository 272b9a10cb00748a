package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/envy-dev/envy"
)

func TestASecondStoreOnTheSameFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envy.db")
	first := openTest(t, path)
	if _, err := Open(context.Background(), path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, path)
	again.Close()
}

func TestNoticesArePublishedBeforeTheWriteReturns(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	defer s.Close()
	got := make(chan envy.Notice, 16)
	cancel := s.Subscribe(func(n envy.Notice) { got <- n })
	defer cancel()
	res := mustWrite(t, s, "app", "A", "1")
	select {
	case n := <-got:
		if n.Kind != envy.NoticeScope || n.Scope != "app" || n.Revision != res.Revision {
			t.Fatalf("notice = %+v, want scope app at %d", n, res.Revision)
		}
	default:
		t.Fatal("no notice by the time the write returned")
	}
	if _, err := s.PutConsumer(context.Background(), envy.Consumer{Scope: "app", ID: "c1"}, envy.ConsumerLimit{}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n.Kind != envy.NoticeConsumer || n.Scope != "app" {
		t.Fatalf("notice = %+v, want a consumer of app", n)
	}
	if err := s.AddDataKey(context.Background(), envy.DataKey{ID: 7, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n.Kind != envy.NoticeDataKey || n.KeyID != 7 {
		t.Fatalf("notice = %+v, want data key 7", n)
	}
}
