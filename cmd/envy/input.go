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

// readStdinValue reads the value of the var name from stdin. From a
// terminal: a prompt on stderr, then one line typed without echo, kept as
// typed (spaces at either end are the value's). From a
// pipe or a file: everything, less one trailing newline, so that
// `echo "$X" | envy vars set S NAME` sets exactly $X (use --from-file to
// keep a file's last newline). Nothing at all (an empty line typed at the
// prompt, a stdin such as /dev/null that holds no byte, or one that holds
// only a line break) is refused: an empty value is stored only when given
// as an argument.
func (a *app) readStdinValue(ctx context.Context, name string) (string, error) {
	if isTerminal(a.stdin) {
		line, err := a.promptValue(ctx, "Value for "+name+": ")
		if err != nil {
			return "", err
		}
		if line == "" {
			return "", usageErrorf("no value typed for %s: nothing stored (to store an empty value, give it as an argument: %s='')", name, name)
		}
		return line, nil
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
		s = s[:len(s)-2]
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	if s == "" {
		// Nothing, or one line break: `echo "$UNSET" | envy vars set S NAME`
		// as much as /dev/null. Neither is a value anybody meant.
		return "", usageErrorf("no value for %s: stdin is not a terminal and holds nothing (or only a line break); give the value as an argument, pipe it in, or use --from-file (nothing stored)", name)
	}
	return s, nil
}

// promptLine reads one line for a prompt: on a terminal, the prompt goes to
// stderr and the line is read (without echo when hide is set); off a
// terminal, the next line of stdin is read, and nothing after it, so that
// `printf 'ADDR\nTOKEN\n' | envy login` answers two prompts. The line
// comes back with surrounding white space trimmed: it is an address, a
// token, a scope or an answer, never a value.
func (a *app) promptLine(ctx context.Context, prompt string, hide bool) (string, error) {
	line, err := a.readPrompt(ctx, prompt, hide)
	return strings.TrimSpace(line), err
}

// promptValue reads a var's value for a prompt, as promptLine does without
// echo, but keeps it as typed: spaces at either end are the value's, as in
// an argument; only the line's end (a "\r" before the "\n", as a terminal
// off Linux may give) is dropped.
func (a *app) promptValue(ctx context.Context, prompt string) (string, error) {
	line, err := a.readPrompt(ctx, prompt, true)
	return strings.TrimSuffix(line, "\r"), err
}

// readPrompt is promptLine's line as read, less its "\n".
func (a *app) readPrompt(ctx context.Context, prompt string, hide bool) (string, error) {
	var (
		line string
		err  error
	)
	if f, ok := a.stdin.(*os.File); ok && isTerminal(f) {
		a.notef("%s", prompt)
		if hide {
			line, err = readNoEcho(ctx, f)
			a.notef("\n")
		} else {
			line, err = readLine(f)
		}
	} else {
		line, err = readLine(a.stdin)
	}
	if err != nil {
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	return line, nil
}

// readFileValue reads a whole file as one value, exactly, its last newline
// included; "-" is stdin, read the same way (a terminal gives one line),
// and refused when it holds nothing.
func (a *app) readFileValue(ctx context.Context, name, path string) (string, error) {
	var r io.Reader = a.stdin
	if path == "-" {
		if isTerminal(a.stdin) {
			return a.readStdinValue(ctx, name)
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
	if len(data) == 0 && path == "-" {
		return "", usageErrorf("no value for %s: stdin holds nothing (nothing stored)", name)
	}
	if len(data) == 0 && !a.allowEmpty {
		// /dev/null, a file not yet written, a wrong path to a FIFO.
		return "", usageErrorf("no value for %s: %s is empty; nothing stored (add --allow-empty to store an empty value)", name, path)
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
