package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxInput bounds what is read from stdin or a file: far above the
// server's limits (a value is at most 65,536 characters, a body 16 MiB), so
// the server is the one that refuses, with its own clear error.
const maxInput = 32 << 20

// readStdinValue reads one value from stdin. From a terminal: a prompt on
// stderr, then one line, typed without echo when hide is set. From a pipe
// or a file: everything, less one trailing newline, so that
// `echo "$X" | envy vars set S NAME` sets exactly $X (use --from-file to
// keep a file's last newline).
func (a *app) readStdinValue(ctx context.Context, prompt string, hide bool) (string, error) {
	if f, ok := a.stdin.(*os.File); ok && isTerminal(f) {
		a.notef("%s", prompt)
		var (
			line string
			err  error
		)
		if hide {
			line, err = readNoEcho(ctx, f)
			a.notef("\n")
		} else {
			line, err = readLine(f)
		}
		return strings.TrimSuffix(line, "\r"), err
	}
	data, err := io.ReadAll(io.LimitReader(a.stdin, maxInput+1))
	if err != nil {
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	if len(data) > maxInput {
		return "", fmt.Errorf("stdin holds more than %d MiB", maxInput>>20)
	}
	s := string(data)
	if strings.HasSuffix(s, "\r\n") {
		return s[:len(s)-2], nil
	}
	return strings.TrimSuffix(s, "\n"), nil
}

// readFileValue reads a whole file as one value, exactly, its last newline
// included; "-" is stdin, read the same way (a terminal gives one line).
func (a *app) readFileValue(ctx context.Context, path string) (string, error) {
	var r io.Reader = a.stdin
	if path == "-" {
		if f, ok := a.stdin.(*os.File); ok && isTerminal(f) {
			return a.readStdinValue(ctx, "Value: ", true)
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxInput {
		return "", fmt.Errorf("%s is larger than %d MiB", displayPath(path), maxInput>>20)
	}
	return string(data), nil
}

// openInput opens a file to read, or stdin for "-".
func (a *app) openInput(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(io.LimitReader(a.stdin, maxInput)), nil
	}
	return os.Open(path)
}

// readLine reads up to a newline, one byte at a time so that nothing after
// the line is consumed.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(buf[0])
		}
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		if b.Len() > maxInput {
			return "", errors.New("input line too long")
		}
	}
}
