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

// isTTY reports whether f looks like a terminal: a character device that
// is not the null device.
func isTTY(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}
