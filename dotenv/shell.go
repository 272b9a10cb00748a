package dotenv

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseShell reads shell assignments as `export NAME='value'` lines, the way
// a POSIX shell would assign them but without running anything: words may
// mix '…' (literal), "…" (with \\ \" \$ \` and line-continuation escapes),
// $'…' (bash's C-style escapes) and bare text with backslash escapes. One
// line may hold several assignments (`export A=1 B=2`), and `export -p` or
// `declare -x` output reads too. '$' and '`' are never expanded: the value
// is the text, which is what this reader can honestly give without a shell.
// Anything that is not an assignment (a command, a pipe, `;`) is an error.
func ParseShell(r io.Reader) ([]KV, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	src, err := prepare(data)
	if err != nil {
		return nil, err
	}
	p := &shParser{scanner{src: src, line: 1}}
	var kvs []KV
	for {
		p.skipBlanks()
		if p.pos >= len(p.src) {
			break
		}
		switch p.src[p.pos] {
		case '\n':
			p.pos++
			p.line++
			continue
		case '#':
			p.skipComment()
			continue
		}
		line := p.line
		words, err := p.words()
		if err != nil {
			return nil, err
		}
		// Drop the builtin and its options: export, export -p, declare -x …
		if len(words) > 0 && !words[0].assign && (words[0].text == "export" || words[0].text == "declare" || words[0].text == "typeset" || words[0].text == "readonly") {
			words = words[1:]
			for len(words) > 0 && !words[0].assign && strings.HasPrefix(words[0].text, "-") {
				words = words[1:]
			}
		}
		for _, w := range words {
			if !w.assign {
				return nil, &ParseError{Line: line, Msg: msgShellSyntax}
			}
			if !utf8.ValidString(w.text) || strings.IndexByte(w.text, 0) >= 0 {
				return nil, &ParseError{Line: w.line, Name: w.name, Msg: msgInvalidUTF8}
			}
			kvs = append(kvs, KV{Name: w.name, Value: w.text})
		}
	}
	return dedupe(kvs), nil
}

type shParser struct{ scanner }

type shWord struct {
	assign bool   // NAME=value
	name   string // when assign
	text   string // the value when assign, else the word
	line   int
}

func (p *shParser) skipBlanks() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
			p.pos += 2
			p.line++
		default:
			return
		}
	}
}

func (p *shParser) skipComment() {
	for p.pos < len(p.src) && p.src[p.pos] != '\n' {
		p.pos++
	}
}

// words reads the words of one command, up to the end of the line or a
// comment.
func (p *shParser) words() ([]shWord, error) {
	var out []shWord
	for {
		p.skipBlanks()
		if p.pos >= len(p.src) {
			return out, nil
		}
		switch p.src[p.pos] {
		case '\n':
			return out, nil
		case '#':
			p.skipComment()
			return out, nil
		}
		w, err := p.word()
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
}

func (p *shParser) word() (shWord, error) {
	w := shWord{line: p.line}
	// An assignment starts with a bare NAME= .
	start := p.pos
	if p.pos < len(p.src) && isNameStart(p.src[p.pos]) {
		i := p.pos + 1
		for i < len(p.src) && (isNameStart(p.src[i]) || (p.src[i] >= '0' && p.src[i] <= '9')) {
			i++
		}
		if i < len(p.src) && p.src[i] == '=' {
			w.assign, w.name = true, p.src[start:i]
			p.pos = i + 1
		}
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			w.text = b.String()
			return w, nil
		case c == ';' || c == '|' || c == '&' || c == '<' || c == '>' || c == '(' || c == ')':
			return w, &ParseError{Line: p.line, Name: w.name, Msg: msgShellSyntax}
		case c == '\'':
			end := strings.IndexByte(p.src[p.pos+1:], '\'')
			if end < 0 {
				return w, &ParseError{Line: w.line, Name: w.name, Msg: msgUnterminatedSh}
			}
			s := p.src[p.pos+1 : p.pos+1+end]
			p.line += strings.Count(s, "\n")
			b.WriteString(s)
			p.pos += end + 2
		case c == '"':
			if err := p.double(&b); err != nil {
				return w, &ParseError{Line: w.line, Name: w.name, Msg: msgUnterminatedSh}
			}
		case c == '$' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'':
			if err := p.ansiC(&b); err != nil {
				return w, &ParseError{Line: w.line, Name: w.name, Msg: msgUnterminatedSh}
			}
		case c == '\\':
			if p.pos+1 >= len(p.src) {
				p.pos++ // a lone trailing backslash: nothing to escape
				continue
			}
			if p.src[p.pos+1] == '\n' { // line continuation
				p.line++
			} else {
				r, n := utf8.DecodeRuneInString(p.src[p.pos+1:])
				b.WriteRune(r)
				p.pos += n - 1
			}
			p.pos += 2
		default:
			p.take(&b)
		}
	}
	w.text = b.String()
	return w, nil
}

// double reads "…": a backslash escapes only \ " $ ` and a newline.
func (p *shParser) double(b *strings.Builder) error {
	p.pos++
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return nil
		case c == '\\' && p.pos+1 < len(p.src) && strings.IndexByte("\\\"$`\n", p.src[p.pos+1]) >= 0:
			if p.src[p.pos+1] == '\n' {
				p.line++
			} else {
				b.WriteByte(p.src[p.pos+1])
			}
			p.pos += 2
		default:
			p.take(b)
		}
	}
	return constError(msgUnterminatedSh)
}

// ansiC reads bash's $'…'.
func (p *shParser) ansiC(b *strings.Builder) error {
	p.pos += 2
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '\'' {
			p.pos++
			return nil
		}
		if c != '\\' || p.pos+1 >= len(p.src) {
			p.take(b)
			continue
		}
		e, done := p.escape(b)
		if done {
			continue
		}
		switch e {
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'e', 'E':
			b.WriteByte(0x1b)
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '\\', '\'', '"', '?':
			b.WriteByte(e)
		case 'x', 'u', 'U':
			max := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			n := 0
			for n < max && p.pos+n < len(p.src) && isHex(p.src[p.pos+n]) {
				n++
			}
			if n == 0 {
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			v, _ := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
			p.pos += n
			if e == 'x' {
				b.WriteByte(byte(v))
			} else {
				b.WriteRune(rune(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n := 1
			for n < 3 && p.pos-1+n < len(p.src) && p.src[p.pos-1+n] >= '0' && p.src[p.pos-1+n] <= '7' {
				n++
			}
			v, _ := strconv.ParseUint(p.src[p.pos-1:p.pos-1+n], 8, 16)
			p.pos += n - 1
			b.WriteByte(byte(v))
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return constError(msgUnterminatedSh)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// WriteShell writes kvs as `export NAME='value'` lines, which any POSIX
// shell can source: inside single quotes nothing is special but the quote
// itself, which is written by closing the quotes, adding \' and opening
// them again.
func WriteShell(w io.Writer, kvs []KV) error {
	var b strings.Builder
	for _, kv := range kvs {
		if err := checkKV(kv); err != nil {
			return err
		}
		if strings.ContainsAny(kv.Name, ".-") {
			return &WriteError{Name: kv.Name, Msg: "not a valid shell variable name"}
		}
		b.WriteString("export ")
		b.WriteString(kv.Name)
		b.WriteString("='")
		b.WriteString(strings.ReplaceAll(kv.Value, "'", `'\''`))
		b.WriteString("'\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
