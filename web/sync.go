package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/envy-dev/envy"
)

// consumerJSON is a consumer as the sync page's script gets it.
type consumerJSON struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Revision int64  `json:"revision"`
	SeenAt   string `json:"seen_at"`
	Behind   bool   `json:"behind"`
}

type statusJSON struct {
	Revision  int64          `json:"revision"`
	Synced    bool           `json:"synced"`
	Behind    int            `json:"behind"`
	Consumers []consumerJSON `json:"consumers"`
}

func statusOfScope(st envy.Status) statusJSON {
	out := statusJSON{Revision: st.Revision, Synced: st.Synced, Consumers: []consumerJSON{}}
	for _, c := range st.Consumers {
		if c.Behind {
			out.Behind++
		}
		out.Consumers = append(out.Consumers, consumerJSON{ID: c.ID, Hostname: c.Hostname, PID: c.PID, Revision: c.Revision,
			SeenAt: c.SeenAt.UTC().Format("2006-01-02 15:04:05 UTC"), Behind: c.Behind})
	}
	return out
}

type syncData struct {
	Scope  envy.Scope
	Status statusJSON
	// Rollout is the scope's rollout when it has a policy (rollout.go).
	Rollout  *envy.RolloutStatus
	CanWrite bool
}

func (h *Handler) syncPage(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	sc, err := h.svc.GetScope(ctx, path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := h.svc.Status(ctx, path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "sync", &view{Title: "Sync of " + path, Section: "scopes", Data: syncData{Scope: sc, Status: statusOfScope(st),
		Rollout: st.Rollout, CanWrite: h.svc.Can(ctx, envy.ActWrite, path)}})
}

// events streams the scope's sync status to the sync page as Server-Sent
// Events ("status", JSON), and the scope's revision to the scope page
// ("scope", {"revision":N}): at once, on every change the watch stream
// brings, and when a consumer report or a change of descriptions only
// moves them (looked for every StatusEvery). It ends when the token is revoked (the watch closes), the
// session ends or the page goes away.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	// Each stream counts against the token's --max-watches-per-token, as
	// the API's watch streams do, and in the same count.
	done, err := h.api.OpenStream(ctx)
	if err != nil {
		if e := envy.AsError(err); e != nil && e.RetryAfter > 0 {
			w.Header().Set("Retry-After", itoa(int64(e.RetryAfter/time.Second)))
		}
		http.Error(w, envy.ErrorMessage(err), statusOf(err))
		return
	}
	defer done()
	events, err := h.svc.Watch(ctx, path, 0)
	if err != nil {
		http.Error(w, envy.ErrorMessage(err), statusOf(err))
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives the server's read and write timeouts.
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	s := sessionFrom(ctx)
	var last []byte
	var lastRev int64
	send := func() bool {
		st, err := h.svc.Status(ctx, path)
		if err != nil {
			return false
		}
		data, _ := json.Marshal(statusOfScope(st))
		if !bytes.Equal(data, last) {
			last = data
			bw.WriteString("event: status\ndata: ")
			bw.Write(data)
			bw.WriteString("\n\n")
		}
		// The scope's own revision, for the scope page: it moves with
		// every change, a description's too, which the watch stream does
		// not bring (the env did not change); the tick finds those.
		sc, err := h.svc.GetScope(ctx, path)
		if err != nil {
			return false
		}
		if sc.Revision != lastRev {
			lastRev = sc.Revision
			bw.WriteString("event: scope\ndata: ")
			bw.WriteString(`{"revision":` + itoa(sc.Revision) + "}")
			bw.WriteString("\n\n")
		}
		return bw.Flush() == nil && rc.Flush() == nil
	}
	if !send() {
		return
	}
	tick := time.NewTicker(h.opts.StatusEvery)
	defer tick.Stop()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			if !send() {
				return
			}
		case <-tick.C:
			if s == nil || !h.sessions.alive(ctx, s) {
				return
			}
			if !send() {
				return
			}
		case <-keep.C:
			bw.WriteString(": keepalive\n\n")
			if bw.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
