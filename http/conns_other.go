//go:build !unix

package http

// fileLimit is a process's open file limit where the system has none to
// ask.
func fileLimit() int { return 8192 }
