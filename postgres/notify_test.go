package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// Notices that don't fit one notification are split over several, each
// within PostgreSQL's limit, and read back whole and in order.
func TestNoticePayloadsRoundTrip(t *testing.T) {
	var notices []envy.Notice
	for i := range 300 {
		notices = append(notices, envy.Notice{Kind: envy.NoticeScope, Scope: fmt.Sprintf("team/%s/%03d", strings.Repeat("x", 80), i), Revision: int64(i + 1), MetaOnly: i%3 == 0})
	}
	notices = append(notices, envy.Notice{Kind: envy.NoticeToken, TokenID: "tok_1", Revision: 301}, envy.Notice{Kind: envy.NoticeDataKey, KeyID: 7, Revision: 302})
	payloads := noticePayloads(notices)
	if len(payloads) < 2 {
		t.Fatalf("%d notices of %d bytes went in %d payload(s)", len(notices), len(strings.Join(payloads, "")), len(payloads))
	}
	var got []envy.Notice
	for _, p := range payloads {
		if len(p) > maxPayload {
			t.Fatalf("a payload of %d bytes, over %d", len(p), maxPayload)
		}
		ns, ok := decodeNotices("*1000\n" + p)
		if !ok {
			t.Fatalf("can't read back %q", p[:40])
		}
		got = append(got, ns...)
	}
	if len(got) != len(notices) {
		t.Fatalf("read back %d notices, want %d", len(got), len(notices))
	}
	for i := range notices {
		want := notices[i]
		want.Revision += 1000
		if got[i] != want {
			t.Fatalf("notice %d read back as %+v, want %+v", i, got[i], want)
		}
	}
	// One notice alone, as a server sent it before notices went together.
	if ns, ok := decodeNotices("s 12 app"); !ok || len(ns) != 1 || ns[0] != (envy.Notice{Kind: envy.NoticeScope, Scope: "app", Revision: 12}) {
		t.Fatalf("a single notice read as %+v, %v", ns, ok)
	}
	for _, bad := range []string{"*x\ns 1 app", "1\ns 1 app", "*1\ns 1 app\nbogus"} {
		if _, ok := decodeNotices(bad); ok {
			t.Errorf("read %q as notices", bad)
		}
	}
}

// The writes of one batch are announced in one notification, not one
// each: every listening server wakes once per batch.
func TestABatchIsAnnouncedInOneNotification(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, `LISTEN `+channel); err != nil {
		t.Fatal(err)
	}
	b := block(t, s, url, ctx, false)
	var ws []envy.Write
	for i := range 20 {
		ws = append(ws, envy.Write{Scope: fmt.Sprintf("batch/s%02d", i), Actor: "tester", CreateScope: true, Changes: []envy.VarChange{setChange("A", "1", nil)}})
	}
	out := queue(t, s, ws...)
	b.release()
	var revs []int64
	for _, o := range out {
		got := <-o
		if got.err != nil {
			t.Fatal(got.err)
		}
		revs = append(revs, got.res.Revision)
	}
	var (
		notifications int
		heard         []int64
	)
	for len(heard) < len(ws) {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := listener.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("heard %d of the batch's %d notices: %v", len(heard), len(ws), err)
		}
		ns, ok := decodeNotices(n.Payload)
		if !ok {
			t.Fatalf("can't read notification %q", n.Payload)
		}
		counted := false
		for _, x := range ns {
			if strings.HasPrefix(x.Scope, "batch/") {
				heard, counted = append(heard, x.Revision), true
			}
		}
		if counted {
			notifications++
		}
	}
	if notifications != 1 {
		t.Errorf("a batch of %d writes was announced in %d notifications, want 1", len(ws), notifications)
	}
	if !slices.Equal(heard, revs) {
		t.Errorf("the notices carry revisions %v, the writes took %v", heard, revs)
	}
}
