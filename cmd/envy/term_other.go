//go:build !linux

package main

import (
	"context"
	"os"
)

// readNoEcho reads a line from the terminal. Off Linux the echo stays on:
// pipe the value in (or use --from-file) to keep it off the screen.
func readNoEcho(ctx context.Context, f *os.File) (string, error) {
	return readLine(f)
}
