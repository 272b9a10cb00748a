package dotenv

import (
	"io"
	"strings"
)

// The messages of the docker format's errors.
const (
	msgDockerBare      = "no value (docker would take it from its own environment)"
	msgDockerLineBreak = "value holds a line break, which docker's --env-file format cannot hold (use another format)"
	msgExportLineBreak = "value holds a line break, which dotenv-export cannot write so that a shell sourcing it reads it back (use --format shell, or dotenv)"
)

// WriteDocker writes kvs as `docker run --env-file` reads them: NAME=VALUE
// lines with the value as it is, unquoted (docker takes quotes literally).
// A value holding a line break cannot be written so; it is an error that
// names the variable.
func WriteDocker(w io.Writer, kvs []KV) error {
	var b strings.Builder
	for _, kv := range kvs {
		if err := checkKV(kv); err != nil {
			return err
		}
		if strings.ContainsAny(kv.Value, "\n\r") {
			return &WriteError{Name: kv.Name, Msg: msgDockerLineBreak}
		}
		b.WriteString(kv.Name)
		b.WriteByte('=')
		b.WriteString(kv.Value)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ParseDocker reads a docker --env-file: NAME=VALUE lines, the value taken
// as it is; blank lines and lines starting with # are skipped. A bare NAME
// (docker takes its value from its own environment) is an error here.
func ParseDocker(r io.Reader) ([]KV, error) {
	text, err := readText(r)
	if err != nil {
		return nil, err
	}
	var kvs []KV
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !validName(name) {
			return nil, &ParseError{Line: n + 1, Msg: msgBadName}
		}
		if !ok {
			return nil, &ParseError{Line: n + 1, Name: name, Msg: msgDockerBare}
		}
		kvs = append(kvs, KV{Name: name, Value: value})
	}
	return dedupe(kvs), nil
}

// WriteDotenvExport writes kvs as a dotenv file whose every line starts
// with `export `, so that a shell can source it and dotenv readers still
// read it. A value holding a line break (\n or \r) cannot be written so:
// dotenv's "\n" is a backslash and an n to a shell, and a raw one is not
// read back by dotenv readers alike (CRLF ends a line). It is an error
// that names the variable; WriteShell writes such values.
func WriteDotenvExport(w io.Writer, kvs []KV) error {
	return writeDotenv(w, kvs, "export ", nil)
}
