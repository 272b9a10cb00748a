//go:build envy_pprof

package main

// Built with -tags envy_pprof, the server also serves net/http/pprof on
// ENVY_PPROF_ADDR (default 127.0.0.1:6060), for profiling under load.
import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("ENVY_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go http.ListenAndServe(addr, nil)
}
