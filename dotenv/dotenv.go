// Package dotenv reads and writes environment variables as files: dotenv
// (.env), JSON, YAML and shell (`export NAME='value'`). The CLI uses it for
// `envy import`, `envy export` and `envy set --from-file`.
//
// The dotenv writer and reader round-trip every value that envy can hold
// (valid UTF-8 without NUL): quotes of every kind, '#', '$', backslashes,
// newlines, carriage returns, tabs, unicode, leading and trailing spaces,
// empty values. The reader also reads what `docker run --env-file` reads
// (NAME=VALUE taken literally, '#' comment lines, blank lines) and what the
// common dotenv libraries write: an `export ` prefix, double-quoted values
// with backslash escapes that may span lines, single-quoted literal values,
// backtick-quoted values, and ` # comments` after unquoted values.
//
// Why not a library: github.com/joho/godotenv (v1.5.1) expands $VARS inside
// double-quoted and unquoted values (so "$HOME" comes back as the reader's
// home directory and a password such as "pa$word" is changed), reads "\t" as
// "t", cannot read back the value `a\` that it writes as "a\\", echoes the
// value in its error messages, and returns an unordered map.
// github.com/hashicorp/go-envparse has no writer, refuses double-quoted
// values that span lines, raw tabs and carriage returns in quotes and the
// escape "\$", and returns an unordered map. Both were tried against the
// round-trip requirement and failed it, so this package has its own small
// parser.
//
// The reader never expands '$' (neither does docker): a value is what the
// file says. Where docker and the dotenv libraries disagree, this reader
// sides with the libraries, which is what a .env file in the wild expects:
// quotes around a value are removed, an unquoted value is trimmed of
// surrounding blanks, and " #" after an unquoted value starts a comment.
// Docker's bare `NAME` line (take the value from the environment) is an
// error, since a file import has no environment to take it from.
//
// Errors name the line number (and the variable when its name was read),
// never a value: a broken line of a secrets file is still a secret.
//
// This package imports nothing from envy: it is plain text handling.
package dotenv

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// KV is one variable of a file: its name and its plaintext value.
type KV struct {
	Name  string
	Value string
}

// Flags is what a file says of its vars' secret flags, by name: true for
// secret, false for plain; a name it says nothing of is absent. In dotenv
// a line "# envy:secret" right before a var's marks it secret
// (SecretMarker); in JSON a member {"value":…,"secret":true|false} says
// either. ParseFlagged reads them and WriteFlagged writes them; the other
// formats neither read nor write them.
type Flags map[string]bool

// SecretMarker is the dotenv comment line that marks the next line's var
// secret. Every dotenv reader takes it as a comment.
const SecretMarker = "# envy:secret"

// isSecretMarker reports whether the comment line c is SecretMarker
// (spaces after '#' and at the ends do not count).
func isSecretMarker(c string) bool {
	c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "#"))
	return c == "envy:secret"
}

// ParseError is a syntax error in a file. Its text is made of the line
// number, the variable's name (when it was read) and a fixed message, so
// that it can never hold a value.
type ParseError struct {
	Line int    // 1-based; 0 when the error has no line (JSON, YAML)
	Name string // the variable, when its name was read before the error
	Msg  string // one of the fixed messages below
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Name != "" {
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// The messages of a ParseError. They are constants on purpose: a message
// built from input could carry a value.
const (
	msgInvalidUTF8    = "not valid UTF-8"
	msgNUL            = "contains a NUL character"
	msgExpectedAssign = `expected NAME=VALUE`
	msgBadName        = "invalid variable name"
	msgUnterminatedDQ = "unterminated double-quoted value"
	msgUnterminatedSQ = "unterminated single-quoted value"
	msgUnterminatedBQ = "unterminated backtick-quoted value"
	msgTrailing       = "unexpected text after the closing quote"
	msgNotObject      = "expected an object (mapping) of names to values"
	msgNotScalar      = "value must be a string, number or boolean"
	msgNotVarObject   = `an object value must be {"value": "…", "secret": true|false}`
	msgNull           = `value is null (write "" for an empty value)`
	msgSyntax         = "syntax error"
	msgUnterminatedSh = "unterminated quote"
	msgShellSyntax    = "unsupported shell syntax"
)

// Parse reads a dotenv file. The variables come back in file order; a name
// given twice keeps its first position and its last value, as a shell that
// sources the file would end up with.
func Parse(r io.Reader) ([]KV, error) {
	kvs, _, err := parseDotenv(r)
	return kvs, err
}

// parseDotenv is Parse, with the vars the file marks secret.
func parseDotenv(r io.Reader) ([]KV, Flags, error) {
	src, err := readText(r)
	if err != nil {
		return nil, nil, err
	}
	// A file edited on Windows: CRLF ends a line like LF does. The writer
	// never puts a raw CR in a value (it writes \r), so nothing is lost.
	src = strings.ReplaceAll(src, "\r\n", "\n")
	p := &parser{scanner: scanner{src: src, line: 1}}
	var kvs []KV
	for {
		kv, ok, err := p.next()
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return dedupe(kvs), p.flags, nil
		}
		kvs = append(kvs, kv)
	}
}

// readText reads all of r and prepares it.
func readText(r io.Reader) (string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	return prepare(data)
}

// prepare checks that data is valid UTF-8 without NUL and drops a byte
// order mark.
func prepare(data []byte) (string, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return "", &ParseError{Line: lineAt(data, i), Msg: msgNUL}
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return "", &ParseError{Line: lineAt(data, i), Msg: msgInvalidUTF8}
	}
	return string(data), nil
}

func lineAt(data []byte, i int) int { return bytes.Count(data[:i], []byte("\n")) + 1 }

// dedupe keeps each name once, at its first position, with its last value.
func dedupe(kvs []KV) []KV {
	idx := make(map[string]int, len(kvs))
	out := kvs[:0:0]
	for _, kv := range kvs {
		if i, ok := idx[kv.Name]; ok {
			out[i].Value = kv.Value
			continue
		}
		idx[kv.Name] = len(out)
		out = append(out, kv)
	}
	return out
}

// scanner is where a parser is in its text: the next byte to read, and
// the line it is on. The dotenv and the shell parsers both read through
// one.
type scanner struct {
	src  string
	pos  int
	line int
}

// take copies the byte at pos to b and moves past it, counting a line
// break.
func (s *scanner) take(b *strings.Builder) {
	c := s.src[s.pos]
	if c == '\n' {
		s.line++
	}
	b.WriteByte(c)
	s.pos++
}

type parser struct {
	scanner
	secretLine int   // the line a SecretMarker comment marks, 0 for none
	flags      Flags // the vars marked secret
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func isNameChar(c byte) bool {
	return isNameStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'
}

// validName reports whether s is a name this package reads and writes:
// [A-Za-z_][A-Za-z0-9_.-]*. The server is stricter (no '.' or '-'); it
// says so itself, with the name.
func validName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func (p *parser) skipBlanks() {
	for p.pos < len(p.src) && isBlank(p.src[p.pos]) {
		p.pos++
	}
}

// restOfLine returns the text up to the end of the line and moves past it.
func (p *parser) restOfLine() string {
	end := strings.IndexByte(p.src[p.pos:], '\n')
	var s string
	if end < 0 {
		s = p.src[p.pos:]
		p.pos = len(p.src)
	} else {
		s = p.src[p.pos : p.pos+end]
		p.pos += end + 1
		p.line++
	}
	return s
}

// next returns the next variable, or ok=false at the end of the input.
func (p *parser) next() (kv KV, ok bool, err error) {
	for p.pos < len(p.src) {
		p.skipBlanks()
		if p.pos >= len(p.src) {
			break
		}
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.pos++
			p.line++
			continue
		case c == '#':
			if isSecretMarker(p.restOfLine()) {
				p.secretLine = p.line // the line after the comment
			}
			continue
		}
		line := p.line
		kv, ok, err := p.assignment()
		if ok && err == nil && line == p.secretLine {
			if p.flags == nil {
				p.flags = Flags{}
			}
			p.flags[kv.Name] = true // marked anywhere, it stays secret
		}
		return kv, ok, err
	}
	return KV{}, false, nil
}

func (p *parser) assignment() (KV, bool, error) {
	line := p.line
	name := p.name()
	if name == "export" && p.pos < len(p.src) && isBlank(p.src[p.pos]) {
		p.skipBlanks()
		if p.pos < len(p.src) && isNameStart(p.src[p.pos]) {
			name = p.name()
		}
	}
	if name == "" {
		p.restOfLine()
		return KV{}, false, &ParseError{Line: line, Msg: msgBadName}
	}
	p.skipBlanks()
	if p.pos >= len(p.src) || p.src[p.pos] != '=' {
		// Not even the name is shown: a line without '=' may be a value
		// that lost its NAME= (a paste gone wrong).
		p.restOfLine()
		return KV{}, false, &ParseError{Line: line, Msg: msgExpectedAssign}
	}
	p.pos++ // '='
	valueStart := p.pos
	p.skipBlanks()
	if p.pos >= len(p.src) {
		return KV{Name: name}, true, nil
	}
	var (
		value string
		err   error
	)
	switch p.src[p.pos] {
	case '"':
		value, err = p.doubleQuoted()
	case '\'':
		value, err = p.literalQuoted('\'', msgUnterminatedSQ)
	case '`':
		value, err = p.literalQuoted('`', msgUnterminatedBQ)
	default:
		p.pos = valueStart
		return KV{Name: name, Value: unquoted(p.restOfLine())}, true, nil
	}
	if err != nil {
		return KV{}, false, &ParseError{Line: line, Name: name, Msg: err.Error()}
	}
	// After the closing quote: blanks, then an optional comment.
	endLine := p.line
	rest := p.restOfLine()
	rest = strings.TrimLeft(rest, " \t\r")
	if rest != "" && rest[0] != '#' {
		return KV{}, false, &ParseError{Line: endLine, Name: name, Msg: msgTrailing}
	}
	return KV{Name: name, Value: value}, true, nil
}

func (p *parser) name() string {
	start := p.pos
	if p.pos < len(p.src) && isNameStart(p.src[p.pos]) {
		p.pos++
		for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
			p.pos++
		}
	}
	return p.src[start:p.pos]
}

// unquoted returns an unquoted value: the text after '=' up to a '#' that
// follows a blank, trimmed of blanks. Nothing in it is an escape. A '#'
// right after '=' is part of the value (NAME=#fff), as in docker and
// python-dotenv.
func unquoted(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && i > 0 && isBlank(s[i-1]) {
			s = s[:i]
			break
		}
	}
	return strings.Trim(s, " \t\r")
}

// escape moves past a backslash at pos and the byte after it, e. When
// e is n, r or t, which stand for \n, \r and \t in double quotes of every
// format that takes escapes, it writes that byte to b and done is true;
// any other escape is the caller's to read.
func (s *scanner) escape(b *strings.Builder) (e byte, done bool) {
	e = s.src[s.pos+1]
	s.pos += 2
	switch e {
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	default:
		return e, false
	}
	return e, true
}

type constError string

func (e constError) Error() string { return string(e) }

// doubleQuoted reads "…" with backslash escapes; it may span lines.
func (p *parser) doubleQuoted() (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\' && p.pos+1 < len(p.src):
			e, done := p.escape(&b)
			if done {
				continue
			}
			switch e {
			case '"', '\\', '$', '`', '\'', '!':
				// godotenv writes \! (for shells with history
				// expansion); it means '!'.
				b.WriteByte(e)
			default:
				// An unknown escape stays as written, as in the
				// dotenv libraries.
				b.WriteByte('\\')
				if e == '\n' {
					p.line++
				}
				b.WriteByte(e)
			}
		default:
			p.take(&b)
		}
	}
	return "", constError(msgUnterminatedDQ)
}

// literalQuoted reads '…' or `…`: literal, possibly over several lines. A
// backslash before the quote character escapes it (python-dotenv writes
// 'it\'s'); a doubled backslash stays as it is and cannot escape the quote.
func (p *parser) literalQuoted(q byte, unterminated string) (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == q:
			b.WriteByte(q)
			p.pos += 2
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\\':
			b.WriteString(`\\`)
			p.pos += 2
		default:
			p.take(&b)
		}
	}
	return "", constError(unterminated)
}

// Write writes kvs as a dotenv file, one NAME=VALUE line each, in order.
//
// A value of only plain characters is written bare (PORT=8080). A value that
// needs quoting but has no quote, backslash or line break is written in
// single quotes, which every dotenv reader and a shell take literally, so
// '$' stays '$' even for readers that expand. Anything else goes in double
// quotes with \\, \", \n, \r, \$ and \` escaped, so that no reader expands
// it and a shell that sources the file runs nothing.
func Write(w io.Writer, kvs []KV) error {
	return writeDotenv(w, kvs, "", nil)
}

// writeDotenv writes kvs as dotenv lines, each after prefix.
// A var flags marks secret gets a SecretMarker line before its own. With
// a prefix (`export `, for a shell to source), a value holding a line
// break is an error (WriteDotenvExport).
func writeDotenv(w io.Writer, kvs []KV, prefix string, flags Flags) error {
	var b strings.Builder
	for _, kv := range kvs {
		if err := checkKV(kv); err != nil {
			return err
		}
		if prefix != "" && strings.ContainsAny(kv.Value, "\n\r") {
			return &WriteError{Name: kv.Name, Msg: msgExportLineBreak}
		}
		if flags[kv.Name] {
			b.WriteString(SecretMarker)
			b.WriteByte('\n')
		}
		b.WriteString(prefix)
		b.WriteString(kv.Name)
		b.WriteByte('=')
		b.WriteString(quoteDotenv(kv.Value))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteError is a value or name that cannot be written. Like ParseError it
// names the variable, never the value.
type WriteError struct {
	Name string
	Msg  string
}

func (e *WriteError) Error() string { return fmt.Sprintf("%s: %s", e.Name, e.Msg) }

func checkKV(kv KV) error {
	if !validName(kv.Name) {
		return &WriteError{Name: fmt.Sprintf("%q", kv.Name), Msg: msgBadName}
	}
	if !utf8.ValidString(kv.Value) {
		return &WriteError{Name: kv.Name, Msg: "value is " + msgInvalidUTF8}
	}
	if strings.IndexByte(kv.Value, 0) >= 0 {
		return &WriteError{Name: kv.Name, Msg: "value " + msgNUL}
	}
	return nil
}

// isBare reports whether a value can be written without quotes: it is not
// empty-looking and holds only characters that no reader (nor a shell
// sourcing the file) treats specially.
func isBare(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_-./:@,+=%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func quoteDotenv(v string) string {
	if isBare(v) {
		return v // includes the empty value: NAME=
	}
	if !strings.ContainsAny(v, "'\\\n\r") {
		return "'" + v + "'"
	}
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"', '$', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			// Tabs and other control characters go raw: godotenv reads
			// "\t" as "t", and every reader keeps a raw one.
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
