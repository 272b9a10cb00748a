package dotenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/joho/godotenv"
)

// roundTripValues are the values that the dotenv writer and reader must
// give back exactly.
var roundTripValues = []struct{ name, value string }{
	{"empty", ""},
	{"plain", "hello"},
	{"url", "postgres://u:p@db:5432/app?sslmode=disable"},
	{"single quote", "it's"},
	{"double quote", `say "hi"`},
	{"backtick", "a`b`c"},
	{"all quotes", `'"` + "`"},
	{"hash", "#"},
	{"hash after space", "a #b"},
	{"hash inside", "a#b"},
	{"dollar var", "$HOME"},
	{"dollar braces", "${HOME}/x"},
	{"dollar paren", "$(rm -rf ~)"},
	{"password with dollar", "pa$$word"},
	{"backslash", `C:\path\to`},
	{"trailing backslash", `a\`},
	{"backslash n text", `a\nb`},
	{"backslash quote", `\"`},
	{"newline", "line1\nline2"},
	{"trailing newline", "x\n"},
	{"only newlines", "\n\n"},
	{"crlf", "a\r\nb"},
	{"cr", "a\rb"},
	{"tab", "a\tb"},
	{"control chars", "\x01\x1b[31m\x7f"},
	{"unicode", "héllo ☃ 🙂 日本"},
	{"bom inside", "\uFEFFx"},
	{"line separator", "a\u2028b"},
	{"leading space", "  x"},
	{"trailing space", "x  "},
	{"only spaces", "   "},
	{"equals", "a=b=c"},
	{"bang", "hi!"},
	{"pem", "-----BEGIN KEY-----\nMIIB\\+/=\n-----END KEY-----\n"},
	{"json", `{"a": "b\n", "c": [1, 2]}`},
	{"mixed", "'\"`$#\\\n\r\t x "},
}

// refusesLineBreak reports whether format's writer refuses value for the
// line break it holds: docker's format, and dotenv-export, which a shell
// would read back wrong, have no way to write one.
func refusesLineBreak(format Format, value string) bool {
	return (format == FormatDocker || format == FormatDotenvExport) && strings.ContainsAny(value, "\n\r")
}

func TestWriteParseRoundTripsEveryValue(t *testing.T) {
	for _, format := range Formats {
		for _, tc := range roundTripValues {
			t.Run(string(format)+"/"+tc.name, func(t *testing.T) {
				if refusesLineBreak(format, tc.value) {
					t.Skip("this format has no way to hold a line break (TestDockerFormat, TestDotenvExportIsWhatAShellSources: the writer refuses it)")
				}
				in := []KV{{"BEFORE", "1"}, {"VALUE", tc.value}, {"AFTER", "2"}}
				var buf bytes.Buffer
				if err := WriteFormat(&buf, format, in); err != nil {
					t.Fatalf("write: %v", err)
				}
				got, err := ParseFormat(&buf, format)
				if err != nil {
					t.Fatalf("parse %q: %v", buf.String(), err)
				}
				if !reflect.DeepEqual(got, in) {
					t.Fatalf("wrote %q\nread  %q\nwant  %q", buf.String(), got, in)
				}
			})
		}
	}
}

func TestWriteChoosesTheSimplestSafeForm(t *testing.T) {
	tests := []struct{ value, line string }{
		{"8080", "K=8080"},
		{"", "K="},
		{"a b", "K='a b'"},
		{"$HOME", "K='$HOME'"},
		{"it's", `K="it's"`},
		{"a\nb", `K="a\nb"`},
		{`a\b$c`, `K="a\\b\$c"`},
		{"`x`\n", "K=\"\\`x\\`\\n\""},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		if err := Write(&buf, []KV{{"K", tc.value}}); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(buf.String(), "\n"); got != tc.line {
			t.Errorf("Write(%q) = %s, want %s", tc.value, got, tc.line)
		}
	}
}

func TestParseReads(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []KV
	}{
		{"docker env-file lines, comments and blank lines",
			"# comment\n\nA=1\n  # indented comment\nB=value with spaces\nC=\nD=a=b\n",
			[]KV{{"A", "1"}, {"B", "value with spaces"}, {"C", ""}, {"D", "a=b"}}},
		{"docker takes an unquoted value literally: no escapes, no expansion",
			`A=a\nb` + "\n" + `B=$HOME` + "\n" + `C=a"b'c` + "\n",
			[]KV{{"A", `a\nb`}, {"B", "$HOME"}, {"C", `a"b'c`}}},
		{"export prefix",
			"export A=1\nexport  B=\"two\"\nexport=3\n",
			[]KV{{"A", "1"}, {"B", "two"}, {"export", "3"}}},
		{"double quotes with escapes",
			`A="a\nb\tc\rd"` + "\n" + `B="q\"q \\ \$X \` + "`" + `"` + "\n",
			[]KV{{"A", "a\nb\tc\rd"}, {"B", `q"q \ $X ` + "`"}}},
		{"an unknown escape stays as written",
			`A="\d\w"`, []KV{{"A", `\d\w`}}},
		{"godotenv's \\! means !",
			`A="hi\!"`, []KV{{"A", "hi!"}}},
		{"dollar is never expanded, in any quotes",
			"HOME=/x\nA=\"$HOME\"\nB=${HOME}\nC='$HOME'\n",
			[]KV{{"HOME", "/x"}, {"A", "$HOME"}, {"B", "${HOME}"}, {"C", "$HOME"}}},
		{"single quotes are literal",
			`A='a\nb "c" $D'`, []KV{{"A", `a\nb "c" $D`}}},
		{"python-dotenv's escaped single quote",
			`A='it\'s'` + "\n" + `B='a\\'`, []KV{{"A", "it's"}, {"B", `a\\`}}},
		{"backtick quotes",
			"A=`say \"it's\"`", []KV{{"A", `say "it's"`}}},
		{"inline comments after unquoted and quoted values",
			"A=val # comment\nB=val\t# tab comment\nC=\"v\" # c\nD='v'#c\nE= # only a comment\n",
			[]KV{{"A", "val"}, {"B", "val"}, {"C", "v"}, {"D", "v"}, {"E", ""}}},
		{"a hash without a blank before it is part of the value",
			"A=a#b\nB=#fff\n", []KV{{"A", "a#b"}, {"B", "#fff"}}},
		{"multi-line double-quoted value",
			"A=\"line1\nline2\n\"\nB=after\n", []KV{{"A", "line1\nline2\n"}, {"B", "after"}}},
		{"multi-line single-quoted value",
			"A='-----BEGIN-----\nabc\n-----END-----'\n", []KV{{"A", "-----BEGIN-----\nabc\n-----END-----"}}},
		{"blanks around the name, '=' and an unquoted value",
			"  A = spaced  \n\tB=\t\"q\"  \n", []KV{{"A", "spaced"}, {"B", "q"}}},
		{"CRLF line endings",
			"A=1\r\nB=\"x\r\ny\"\r\nC='z'\r\n", []KV{{"A", "1"}, {"B", "x\ny"}, {"C", "z"}}},
		{"a byte order mark",
			"\uFEFFA=1\n", []KV{{"A", "1"}}},
		{"no newline at the end",
			"A=1", []KV{{"A", "1"}}},
		{"a name given twice keeps its first place and last value",
			"A=1\nB=2\nA=3\n", []KV{{"A", "3"}, {"B", "2"}}},
		{"names with dots and dashes",
			"a.b-c=1\n_X=2\n", []KV{{"a.b-c", "1"}, {"_X", "2"}}},
		{"an empty file", "", nil},
		{"only comments", "# a\n\n# b\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// What godotenv writes (its Marshal), this package reads back as the same
// values, $ and all.
func TestParseReadsGodotenvMarshal(t *testing.T) {
	m := map[string]string{}
	for i, tc := range roundTripValues {
		m[string(rune('A'+i%26))+strings.Repeat("_", i/26)] = tc.value
	}
	s, err := godotenv.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[kv.Name] = kv.Value
	}
	for k, want := range m {
		// godotenv writes values that look like integers bare, after
		// strconv.Atoi, and trims nothing else.
		if got[k] != want {
			t.Errorf("%s: godotenv wrote %q, read %q, want %q", k, s, got[k], want)
		}
	}
}

// And godotenv reads what Write writes, for values that godotenv itself can
// hold (its reader expands $ and mishandles a few escapes; see the package
// doc), so a file exported by envy works with godotenv-based tools.
func TestGodotenvReadsWrite(t *testing.T) {
	values := []KV{
		{"A", "plain"}, {"B", "with space"}, {"C", "$HOME"}, {"D", "a\nb"},
		{"E", "it's"}, {"F", "x # y"}, {"G", "héllo"}, {"H", ""}, {"I", "p$ss'wd"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, values); err != nil {
		t.Fatal(err)
	}
	m, err := godotenv.Unmarshal(buf.String())
	if err != nil {
		t.Fatalf("godotenv.Unmarshal(%q): %v", buf.String(), err)
	}
	for _, kv := range values {
		if m[kv.Name] != kv.Value {
			t.Errorf("%s: wrote %q, godotenv read %q, want %q", kv.Name, buf.String(), m[kv.Name], kv.Value)
		}
	}
}

func TestParseErrorsNameTheLineNotTheValue(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	tests := []struct {
		name string
		in   string
		want string // the whole error text
	}{
		{"unterminated double quote", "A=1\nB=\"" + secret + "\nC=2\n", `line 2: B: unterminated double-quoted value`},
		{"unterminated single quote", "A='" + secret, `line 1: A: unterminated single-quoted value`},
		{"unterminated backtick", "\n\nA=`" + secret, `line 3: A: unterminated backtick-quoted value`},
		{"text after the closing quote", "A=\"x\"" + secret, `line 1: A: unexpected text after the closing quote`},
		{"text after a multi-line value names its last line", "A=\"x\ny\"" + secret, `line 2: A: unexpected text after the closing quote`},
		{"a line without '=' (docker's pass-through form)", "A=1\n" + secret + "\n", `line 2: expected NAME=VALUE`},
		{"a line that is only a value", "A=1\n\n\"" + secret + "\"\n", `line 3: invalid variable name`},
		{"a name with a space", "MY " + secret + "=1", `line 1: expected NAME=VALUE`},
		{"invalid UTF-8", "A=1\nB=" + secret + "\xff\n", `line 2: not valid UTF-8`},
		{"NUL", "A=1\nB=" + secret + "\x00\n", `line 2: contains a NUL character`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("Parse: no error")
			}
			if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q holds the value", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error is %T, want *ParseError", err)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name string
		kv   KV
		want string
	}{
		{"an empty name", KV{"", "x"}, `"": invalid variable name`},
		{"a name with a space", KV{"A B", "x"}, `"A B": invalid variable name`},
		{"a NUL in the value", KV{"A", "se\x00cret"}, `A: value contains a NUL character`},
		{"invalid UTF-8 in the value", KV{"A", "se\xffcret"}, `A: value is not valid UTF-8`},
	}
	for _, tc := range tests {
		for _, format := range Formats {
			err := WriteFormat(&bytes.Buffer{}, format, []KV{tc.kv})
			if err == nil || err.Error() != tc.want {
				t.Errorf("%s, %s: error %v, want %s", format, tc.name, err, tc.want)
			}
		}
	}
	if err := WriteShell(&bytes.Buffer{}, []KV{{"a.b", "x"}}); err == nil {
		t.Error("WriteShell wrote a name that no shell can assign")
	}
}

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []KV
	}{
		{"an object in file order", `{"B": "2", "A": "1"}`, []KV{{"B", "2"}, {"A", "1"}}},
		{"numbers and booleans as written", `{"PORT": 8080, "RATE": 1.50, "DEBUG": true}`,
			[]KV{{"PORT", "8080"}, {"RATE", "1.50"}, {"DEBUG", "true"}}},
		{"escapes", `{"A": "a\nb\u00e9\"<>"}`, []KV{{"A", "a\nbé\"<>"}}},
		{"the API's env reply", `{"scope": "acme/web", "revision": 7, "env": {"A": "1", "scope": "x"}}`,
			[]KV{{"A", "1"}, {"scope", "x"}}},
		{"the API's env reply with its secrets list", `{"scope": "acme/web", "revision": 7, "env": {"A": "1", "K": "s"}, "secrets": ["K"]}`,
			[]KV{{"A", "1"}, {"K", "s"}}},
		{"a var named env that is a string", `{"env": "prod", "scope": "x"}`, []KV{{"env", "prod"}, {"scope", "x"}}},
		{"an empty object", `{}`, nil},
		{"an empty file", ``, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJSON(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) != 0 || len(tc.want) != 0) && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"null", "{\n\"A\": null}", `line 2: A: value is null (write "" for an empty value)`},
		{"nested", `{"A": {"x": "s3cr3t"}}`, `line 1: A: an object value must be {"value": "…", "secret": true|false}`},
		{"array", `["s3cr3t"]`, `line 1: expected an object (mapping) of names to values`},
		{"syntax", "{\n\"A\": \"s3cr3t\",\n\"B\": s3cr3t}", `line 3: syntax error`},
		{"truncated", `{"A": "s3cr3t`, `line 1: syntax error`},
		{"bad name", "{\"A\": \"1\",\n \"s3cr3t value\": \"x\"}", `line 2: invalid variable name`},
		{"trailing data", `{"A": "1"} s3cr3t`, `line 1: syntax error`},
	}
	for _, tc := range tests {
		_, err := ParseJSON(strings.NewReader(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestParseYAML(t *testing.T) {
	in := "# vars\nB: two words\nA: 8080\nC: yes\nD: \"quoted: #x\"\nE: |\n  line1\n  line2\nF: ''\nG: &anchor shared\nH: *anchor\n"
	want := []KV{{"B", "two words"}, {"A", "8080"}, {"C", "yes"}, {"D", "quoted: #x"},
		{"E", "line1\nline2\n"}, {"F", ""}, {"G", "shared"}, {"H", "shared"}}
	got, err := ParseYAML(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, empty := range []string{"", "# only a comment\n", "---\n"} {
		if got, err := ParseYAML(strings.NewReader(empty)); err != nil || len(got) != 0 {
			t.Errorf("ParseYAML(%q) = %q, %v; want nothing", empty, got, err)
		}
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"null", "A: 1\nB:\n", `line 2: B: value is null (write "" for an empty value)`},
		{"nested", "A:\n  x: s3cr3t\n", `line 2: A: value must be a string, number or boolean`},
		{"a list", "- s3cr3t\n", `line 1: expected an object (mapping) of names to values`},
		{"syntax", "A: 1\nB: \"s3cr3t\n", `line 2: syntax error`},
		{"bad name", "A: 1\ns3cr3t value: x\n", `line 2: invalid variable name`},
	}
	for _, tc := range tests {
		_, err := ParseYAML(strings.NewReader(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestParseShell(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []KV
	}{
		{"what WriteShell writes", `export A='it'\''s'` + "\nexport B='multi\nline'\n", []KV{{"A", "it's"}, {"B", "multi\nline"}}},
		{"without export, several per line, comments", "A=1 B=two # c\n# x\nC=\n", []KV{{"A", "1"}, {"B", "two"}, {"C", ""}}},
		{"double quotes escape only \\ \" $ `", `A="a\"b\\c\$d\` + "`" + `e\nf"`, []KV{{"A", "a\"b\\c$d`e\\nf"}}},
		{"dollar is not expanded", `A=$HOME B="${X}"`, []KV{{"A", "$HOME"}, {"B", "${X}"}}},
		{"bash's $'…'", `A=$'a\nb\t\x41\u00e9\'\\'`, []KV{{"A", "a\nb\tAé'\\"}}},
		{"bare backslash escapes and line continuation", "A=a\\ b\\\nc", []KV{{"A", "a bc"}}},
		{"concatenated quotes", `A='a'"b"c`, []KV{{"A", "abc"}}},
		{"export -p output", "declare -x A=\"1\"\ndeclare -x B=\"x y\"\n", []KV{{"A", "1"}, {"B", "x y"}}},
		{"CRLF", "export A='1'\r\nexport B=2\r\n", []KV{{"A", "1"}, {"B", "2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseShell(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"echo s3cr3t", "A=s3cr3t; rm -rf /", "A='s3cr3t", "A=\"s3cr3t", "export A"} {
		_, err := ParseShell(strings.NewReader(bad))
		if err == nil {
			t.Errorf("ParseShell(%q): no error", bad)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseShell(%q): error %q holds the value", bad, err)
		}
	}
}

func TestFormatNames(t *testing.T) {
	for path, want := range map[string]Format{
		".env": FormatDotenv, "prod.env": FormatDotenv, ".env.local": FormatDotenv, "vars": FormatDotenv,
		"a.json": FormatJSON, "A.YAML": FormatYAML, "x.yml": FormatYAML, "env.sh": FormatShell,
	} {
		if got := FormatFromPath(path); got != want {
			t.Errorf("FormatFromPath(%q) = %s, want %s", path, got, want)
		}
	}
	for name, want := range map[string]Format{"dotenv": FormatDotenv, "env": FormatDotenv, "JSON": FormatJSON, "yml": FormatYAML, "sh": FormatShell} {
		if got, err := ParseFormatName(name); err != nil || got != want {
			t.Errorf("ParseFormatName(%q) = %s, %v; want %s", name, got, err, want)
		}
	}
	if _, err := ParseFormatName("toml"); err == nil {
		t.Error("ParseFormatName(toml): no error")
	}
}

// FuzzRoundTrip: for any value envy can hold (valid UTF-8 without NUL),
// writing it and reading it back gives the same names and values, in every
// format.
func FuzzRoundTrip(f *testing.F) {
	for _, tc := range roundTripValues {
		f.Add(tc.value)
	}
	f.Add("\"\\\n'")
	f.Add("x\\")
	f.Add("  # not a comment  ")
	f.Add("\u0085\u00a0\u2029")
	f.Add("- item")
	f.Add("key: value")
	f.Add("null")
	f.Add("~")
	f.Add("0x1F")
	f.Add("\t leading tab")
	f.Add("\t\n") // yaml.v3 wrote it as a block it could not read back
	f.Fuzz(func(t *testing.T, value string) {
		if !utf8.ValidString(value) || strings.IndexByte(value, 0) >= 0 {
			t.Skip("not a value envy can hold")
		}
		in := []KV{{"FIRST", value}, {"SECOND", value + "x"}, {"THIRD", "z"}}
		for _, format := range Formats {
			if refusesLineBreak(format, value) {
				continue // the format has no way to hold a line break: its writer refuses it
			}
			var buf bytes.Buffer
			if err := WriteFormat(&buf, format, in); err != nil {
				t.Fatalf("%s: write: %v", format, err)
			}
			got, err := ParseFormat(bytes.NewReader(buf.Bytes()), format)
			if err != nil {
				t.Fatalf("%s: parse %q: %v", format, buf.String(), err)
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("%s: wrote %q\nread  %q\nwant  %q", format, buf.String(), got, in)
			}
		}
	})
}

var knownMessages = []string{
	msgInvalidUTF8, msgNUL, msgExpectedAssign, msgBadName, msgUnterminatedDQ,
	msgUnterminatedSQ, msgUnterminatedBQ, msgTrailing, msgNotObject, msgNotScalar,
	msgNull, msgSyntax, msgUnterminatedSh, msgShellSyntax, msgDockerBare,
}

var errShape = regexp.MustCompile(`^(line [1-9][0-9]*: )?([A-Za-z_][A-Za-z0-9_.-]*: )?(.*)$`)

// checkErr asserts that err is made of a line number, a variable name and
// one of the fixed messages, and nothing else, so it cannot hold a value.
func checkErr(t *testing.T, format Format, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: error %T %q is not a *ParseError", format, err, err)
	}
	known := false
	for _, m := range knownMessages {
		known = known || pe.Msg == m
	}
	if !known {
		t.Fatalf("%s: error message %q is not one of the fixed ones", format, pe.Msg)
	}
	if pe.Name != "" && !validName(pe.Name) {
		t.Fatalf("%s: error names %q, which is not a name", format, pe.Name)
	}
	if m := errShape.FindStringSubmatch(err.Error()); m == nil || m[3] != pe.Msg {
		t.Fatalf("%s: error %q has more than a line, a name and a message", format, err)
	}
}

// FuzzParse: no input makes a reader panic, and an error never holds value
// text: it is a line number, a name and a fixed message.
func FuzzParse(f *testing.F) {
	f.Add("A=1\nexport B=\"x\\ny\"\nC='z' # c\n")
	f.Add("A=\"unterminated hunter2")
	f.Add("hunter2")
	f.Add("A='x'trailing")
	f.Add("{\"A\": \"1\", \"B\": null}")
	f.Add("A: 1\nB: [x]\n")
	f.Add("export A='it'\\''s' B=$'\\x41'")
	f.Add("A=\xff")
	f.Add("\uFEFFA=1\r\n")
	f.Add("A=\"a\\")
	f.Fuzz(func(t *testing.T, input string) {
		for _, format := range Formats {
			if _, err := ParseFormat(strings.NewReader(input), format); err != nil {
				checkErr(t, format, err)
			}
		}
		// The input as a value on a line of its own: whatever goes wrong,
		// the error must not quote it.
		if len(input) < 4 || strings.ContainsAny(input, "\n\r=") {
			return
		}
		for _, line := range []string{
			"KEY=\"" + input, "KEY='" + input, "KEY=`" + input, "KEY=\"x\"" + input,
			input, "export KEY=" + input, "KEY=" + input + "\n\"",
		} {
			_, err := Parse(strings.NewReader(line))
			if err == nil {
				continue
			}
			checkErr(t, FormatDotenv, err)
			// The value sits after KEY= or stands alone: the only name an
			// error may give is KEY, so the error text is a line number,
			// "KEY" and a fixed message, whatever the value was.
			if name := err.(*ParseError).Name; name != "" && name != "KEY" {
				t.Fatalf("error %q names %q, read from the value", err, name)
			}
		}
	})
}

// Values and names that a YAML 1.1 reader (PyYAML) or a YAML 1.2 reader
// would read as a boolean, a null, a number or a date are quoted, and every
// one reads back as the same string.
func TestWriteYAMLQuotesWhatAnyReaderWouldReadAsAnotherType(t *testing.T) {
	tricky := []string{"no", "No", "NO", "n", "N", "yes", "Yes", "y", "Y", "on", "On", "ON", "off", "Off", "OFF",
		"true", "False", "~", "null", "Null", "NULL", "", "0755", "0b101", "0x1F", "0o17", "1_000", "1:30", "190:20:30",
		"1.5", ".5", "1e3", "1_000.5", ".inf", "-.Inf", ".nan", "+12", "-7", "2024-01-02", "2001-12-14t21:59:43.10-05:00",
		"<<", "=", "8080"}
	kvs := make([]KV, 0, len(tricky)+4)
	for i, v := range tricky {
		kvs = append(kvs, KV{Name: fmt.Sprintf("V%d", i), Value: v})
	}
	for _, name := range []string{"ON", "Y", "NO", "N", "off"} {
		kvs = append(kvs, KV{Name: name, Value: "plain"})
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, kvs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(kvs) {
		t.Fatalf("%d lines for %d vars:\n%s", len(lines), len(kvs), buf.String())
	}
	for i, kv := range kvs {
		key, val, _ := strings.Cut(lines[i], ": ")
		if i < len(tricky) && !strings.HasPrefix(val, `"`) && !strings.HasPrefix(val, `'`) {
			t.Errorf("%q is written plain: %s", kv.Value, lines[i])
		}
		if i >= len(tricky) && !strings.HasPrefix(key, `"`) {
			t.Errorf("name %s is written plain: %s", kv.Name, lines[i])
		}
	}
	got, err := ParseYAML(bytes.NewReader(buf.Bytes()))
	if err != nil || !reflect.DeepEqual(got, kvs) {
		t.Fatalf("read back %q, %v\nwant %q", got, err, kvs)
	}
	// Ordinary words stay plain.
	buf.Reset()
	WriteYAML(&buf, []KV{{"A", "hello"}, {"B", "nope"}, {"C", "yesterday"}})
	if buf.String() != "A: hello\nB: nope\nC: yesterday\n" {
		t.Errorf("plain words: %q", buf.String())
	}
}

func TestDockerFormat(t *testing.T) {
	kvs := []KV{{"A", "1"}, {"QUOTED", `"kept" 'as is' $HOME # not a comment`}, {"SPACES", "  both ends  "}, {"EMPTY", ""}}
	var buf bytes.Buffer
	if err := WriteDocker(&buf, kvs); err != nil {
		t.Fatal(err)
	}
	want := "A=1\nQUOTED=\"kept\" 'as is' $HOME # not a comment\nSPACES=  both ends  \nEMPTY=\n"
	if buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
	got, err := ParseDocker(strings.NewReader("# comment\n\n" + want))
	if err != nil || !reflect.DeepEqual(got, kvs) {
		t.Errorf("read back %q, %v", got, err)
	}
	for _, v := range []string{"a\nb", "a\r"} {
		err := WriteDocker(&buf, []KV{{"PEM", v}})
		if err == nil || !strings.HasPrefix(err.Error(), "PEM: value holds a line break") {
			t.Errorf("%q: error %v", v, err)
		}
	}
	if _, err := ParseDocker(strings.NewReader("A=1\nBARE\n")); err == nil || !strings.HasPrefix(err.Error(), "line 2: BARE:") {
		t.Errorf("a bare name: %v", err)
	}
	buf.Reset()
	if err := WriteDotenvExport(&buf, kvs[:2]); err != nil || buf.String() != "export A=1\nexport QUOTED=\"\\\"kept\\\" 'as is' \\$HOME # not a comment\"\n" {
		t.Errorf("dotenv-export: %q, %v", buf.String(), err)
	}
	back, err := Parse(&buf)
	if err != nil || !reflect.DeepEqual(back, kvs[:2]) {
		t.Errorf("dotenv-export read back %q, %v", back, err)
	}
}

// dotenv-export is for a shell to source: every value it writes, a shell
// reads back as it was, and one holding a line break (which dotenv's "\n"
// would give a shell as a backslash and an n) is refused, naming the var.
func TestDotenvExportIsWhatAShellSources(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	file := filepath.Join(t.TempDir(), "env.sh")
	for _, tc := range roundTripValues {
		var buf bytes.Buffer
		err := WriteDotenvExport(&buf, []KV{{"BEFORE", "1"}, {"VALUE", tc.value}})
		if strings.ContainsAny(tc.value, "\n\r") {
			if err == nil || err.Error() != "VALUE: "+msgExportLineBreak || buf.Len() != 0 {
				t.Errorf("%s: wrote %q, error %v; want it refused, naming VALUE", tc.name, buf.String(), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sh, "-c", `. "$1" && printf %s "$VALUE"`, "sh", file).Output()
		if err != nil || string(out) != tc.value {
			t.Errorf("%s: sh sourced %q and read %q (%v), want %q", tc.name, buf.String(), out, err, tc.value)
		}
	}
}

// The secret flags round-trip through dotenv, dotenv-export and JSON;
// a marker counts only right before its var.
func TestFlagsRoundTrip(t *testing.T) {
	for _, f := range []Format{FormatDotenv, FormatDotenvExport, FormatJSON} {
		kvs := []KV{{"A", "1"}, {"KEY", "sk # live"}, {"B", "x\ny"}}
		if refusesLineBreak(f, kvs[2].Value) {
			kvs[2].Value = "x y"
		}
		var buf bytes.Buffer
		if err := WriteFlagged(&buf, f, kvs, Flags{"KEY": true, "A": false}); err != nil {
			t.Fatal(err)
		}
		got, flags, err := ParseFlagged(&buf, f)
		if err != nil || !reflect.DeepEqual(got, kvs) {
			t.Fatalf("%s: %v %v", f, got, err)
		}
		want := Flags{"KEY": true}
		if f == FormatJSON {
			want["A"] = false
		}
		if !reflect.DeepEqual(flags, want) {
			t.Errorf("%s: flags %v, want %v", f, flags, want)
		}
	}
	_, flags, err := ParseFlagged(strings.NewReader("# envy:secret\n\nA=1\n#  envy:secret \nB=2\n# envy:secret\n# other\nC=3\n"), FormatDotenv)
	if err != nil || !reflect.DeepEqual(flags, Flags{"B": true}) {
		t.Fatalf("markers: %v %v; want only B", flags, err)
	}
	if _, _, err := ParseFlagged(strings.NewReader(`{"A":{"value":"1","secret":true,"x":1}}`), FormatJSON); err == nil || strings.Contains(err.Error(), `"1"`) {
		t.Fatalf("an object with an unknown member: %v", err)
	}
}
