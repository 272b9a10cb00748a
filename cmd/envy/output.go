package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/dotenv"
)

// table writes aligned columns for people.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(headers...)
	}
	return t
}

// row writes one row. Cells are made safe for a table: control characters
// (a value's newline, a tab) are escaped so that they cannot break the
// columns, and long cells are cut.
func (t *table) row(cells ...string) { t.rowCut(maxCell, cells...) }

// rowWhole writes one row whose cells are not cut, for a value that must
// be read whole, such as a path.
func (t *table) rowWhole(cells ...string) { t.rowCut(math.MaxInt, cells...) }

func (t *table) rowCut(max int, cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, cell(c, max))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

const maxCell = 60

// cell escapes control characters as \n, \t, \xNN and cuts s to max
// characters with an ellipsis.
func cell(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		var piece string
		switch {
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case unicode.IsControl(r) || r == utf8.RuneError:
			q := strconv.QuoteRune(r)
			piece = q[1 : len(q)-1]
		default:
			piece = string(r)
		}
		if n+utf8.RuneCountInString(piece) > max {
			b.WriteString("…")
			return b.String()
		}
		b.WriteString(piece)
		n += utf8.RuneCountInString(piece)
	}
	return b.String()
}

// kvTable writes "key: value" lines, aligned, for one object.
func kvTable(w io.Writer, pairs ...string) error {
	t := newTable(w)
	for i := 0; i+1 < len(pairs); i += 2 {
		t.row(pairs[i]+":", pairs[i+1])
	}
	return t.flush()
}

// capture returns a context whose client calls store their raw reply, for
// -o json.
func capture(ctx context.Context) (context.Context, *[]byte) {
	var raw []byte
	return client.CaptureBody(ctx, &raw), &raw
}

// printJSON prints the server's JSON reply as it came, indented, ending
// in one newline; when the reply had no body (a delete), it prints
// fallback instead. With -o yaml it prints the same as YAML, keys in the
// reply's order, strings quoted wherever a YAML 1.1 or 1.2 reader would
// read them as something else.
func (a *app) printJSON(raw []byte, fallback any) error {
	if len(raw) == 0 {
		b, err := json.Marshal(fallback)
		if err != nil {
			return err
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if a.output == "yaml" {
		out, err := jsonToYAML(raw)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(out)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

// jsonToYAML turns a JSON document into block-style YAML.
func jsonToYAML(raw []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("the server's reply is not JSON that YAML can hold: %v", err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			n.Style = 0
			if n.Tag == "!!str" {
				n.Style = dotenv.YAMLStyle(n.Value)
			}
		case yaml.MappingNode, yaml.SequenceNode:
			n.Style = 0
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// progressMin is the number of vars from which a write shows progress.
const progressMin = 200

// progress shows, on a terminal's stderr, that a long operation is under
// way, and returns the function that ends the line: "done" or "failed".
// Off a terminal (or when show is false) it shows nothing.
func (a *app) progress(show bool, format string, args ...any) func(error) {
	if !show || !isTerminal(a.stderr) {
		return func(error) {}
	}
	a.notef("%s…", fmt.Sprintf(format, args...))
	began := time.Now()
	return func(err error) {
		if err != nil {
			a.notef(" failed\n")
			return
		}
		a.notef(" done (%s)\n", time.Since(began).Round(time.Millisecond))
	}
}

// printf writes a line for people to stdout.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, args...)
}

// notef writes a note for people to stderr, out of the way of a pipe.
func (a *app) notef(format string, args ...any) {
	fmt.Fprintf(a.stderr, format, args...)
}

// When and how times are shown in tables: local time, to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// syncedNote says whether running workloads have a write, naming those
// that don't yet with the scope each runs (a write's reply names some).
func syncedNote(synced bool, behind ...client.BehindConsumer) string {
	if synced {
		return "workloads in sync"
	}
	if len(behind) == 0 {
		return "some workloads not yet on it"
	}
	names := make([]string, len(behind))
	for i, b := range behind {
		names[i] = fmt.Sprintf("%s of %s at revision %d", b.ID, b.Scope, b.Revision)
	}
	return "not yet on it: " + strings.Join(names, ", ")
}

// isTerminal reports whether v is a terminal: a file that answers the
// terminal ioctl, not merely a character device (/dev/null is one).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && isTTY(f)
}

// shownValue is what a table shows of a var's value: the value when the
// read gave it, else the masked value of a secret.
func shownValue(value, masked *string) string {
	switch {
	case value != nil:
		return *value
	case masked != nil:
		return *masked
	}
	return ""
}
