package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// BenchmarkAuditedWrites measures the CPU a durable single-var write costs
// the process, as bench's write case sends them: 32 writers, 64 scopes of
// 50 vars, each write one var with its audit entry. cpu-µs/write (user
// and system time, from getrusage) holds when other work shares the
// machine, which a rate does not. Each value names data key 1, as a
// sealed value does, so the write checks that the key is still there.
func BenchmarkAuditedWrites(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "envy.db"))
	defer s.Close()
	ctx := context.Background()
	if err := s.AddDataKey(ctx, envy.DataKey{ID: 1, Wrapped: []byte("wrapped")}); err != nil {
		b.Fatal(err)
	}
	underKey1 := []byte{1, 0, 0, 0, 1} // a sealed value's format and data key id
	var kv []string
	for i := range 50 {
		kv = append(kv, fmt.Sprintf("V_%02d", i), "value")
	}
	for sc := range 64 {
		mustWrite(b, s, fmt.Sprintf("bench/s%02d", sc), kv...)
	}
	var n atomic.Int64
	var versions [64][50]atomic.Int64 // each var's version, as a cache of the service would know it
	for sc := range 64 {
		for _, v := range varsOf(b, s, fmt.Sprintf("bench/s%02d", sc)) {
			var k int
			fmt.Sscanf(v.Name, "V_%d", &k)
			versions[sc][k].Store(v.Version)
		}
	}
	b.SetParallelism(16) // 32 writers on GOMAXPROCS=2
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			sc, k := (i/50)%64, i%50
			scope, name := fmt.Sprintf("bench/s%02d", sc), fmt.Sprintf("V_%02d", k)
			for {
				ver := &versions[sc][k]
				base := ver.Load()
				c := envy.VarChange{Name: name, ID: "id-" + name, Version: base + 1, Base: base, Sealed: fmt.Append(underKey1, i)}
				res, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "bench", ActorToken: "tok_bench", Changes: []envy.VarChange{c},
					Audit: []envy.AuditEntry{{At: time.Now(), Actor: "bench", Action: envy.AuditAction("var.set"), Scope: scope, Names: []string{name},
						Status: envy.OutcomeOK, RequestID: "req-0123456789abcdef", Client: "127.0.0.1", TokenID: "tok_bench", Count: 1}}})
				if errors.Is(err, envy.ErrStale) {
					for _, v := range varsOf(b, s, scope) {
						if v.Name == name {
							ver.Store(v.Version)
						}
					}
					continue
				}
				if err == nil && len(res.Vars) == 1 {
					ver.CompareAndSwap(base, res.Vars[0].Version)
				}
				if err != nil {
					b.Error(err)
					return
				}
				break
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/write")
	if c := s.commits.Load(); c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "writes/commit")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
