package dotenv

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseYAML reads a YAML mapping of names to scalar values, in file order.
// A scalar is taken as the text it is written as: `PORT: 8080` gives
// "8080" and `DEBUG: yes` gives "yes", not a number or a boolean re-printed.
// A null (`NAME:` or `NAME: ~`) is an error rather than a guess between
// "" and "absent".
//
// The YAML library's error texts are not passed on (only their line
// number): some quote the input.
func ParseYAML(r io.Reader) ([]KV, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if _, err := prepare(data); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file holds no variables
		}
		return nil, &ParseError{Line: yamlErrLine(err), Msg: msgSyntax}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	root = resolveAlias(root)
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // a document of only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, &ParseError{Line: root.Line, Msg: msgNotObject}
	}
	kvs := make([]KV, 0, len(root.Content)/2)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolveAlias(root.Content[i]), resolveAlias(root.Content[i+1])
		if k.Kind != yaml.ScalarNode || !validName(k.Value) {
			return nil, &ParseError{Line: k.Line, Msg: msgBadName}
		}
		switch {
		case v.Kind != yaml.ScalarNode:
			return nil, &ParseError{Line: v.Line, Name: k.Value, Msg: msgNotScalar}
		case v.Tag == "!!null":
			return nil, &ParseError{Line: v.Line, Name: k.Value, Msg: msgNull}
		}
		kvs = append(kvs, KV{Name: k.Value, Value: v.Value})
	}
	return dedupe(kvs), nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n
		}
	}
	return 0
}

// WriteYAML writes kvs as one YAML mapping, in order. Every value is tagged
// as a string, so the encoder quotes those that a YAML 1.2 reader would
// read as something else ("8080", "null", ""), and YAMLStyle quotes those
// that a YAML 1.1 reader (PyYAML, Ruby's Psych, SnakeYAML) would ("yes",
// "no", "on", "off", "y", "~", "0755", "1:30", "2024-01-02"); names too
// ("ON", "Y" and "NO" are valid names).
func WriteYAML(w io.Writer, kvs []KV) error {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, kv := range kvs {
		if err := checkKV(kv); err != nil {
			return err
		}
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv.Name, Style: YAMLStyle(kv.Name)},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv.Value, Style: YAMLStyle(kv.Value)},
		)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// yaml11Implicit matches the plain scalars that some YAML 1.1 or 1.2 reader
// resolves to something other than a string: booleans (1.1 has y, n, yes,
// no, on, off in three cases), nulls, integers (octal 0755, binary,
// hexadecimal, sexagesimal 1:30, with underscores), floats (.5, 1e3,
// 1_000.5, .inf, .nan), timestamps, the merge key << and the value key =.
// Anything that starts like a number is matched as well: quoting a string
// is always safe, leaving one plain is safe only when no reader guesses.
var yaml11Implicit = regexp.MustCompile(`^(?:` +
	`y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` +
	`|~|null|Null|NULL` +
	`|<<|=` +
	`|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[-+]?[0-9.].*` + // every integer, float, sexagesimal and timestamp starts so
	`)$`)

// YAMLStyle returns the style a string needs in YAML to read back as the
// same string in any reader. It leaves the choice to the encoder (plain,
// quoted or a literal block, which keeps a PEM readable) except for values
// that a reader could take for another type (see yaml11Implicit) and
// values that yaml.v3's blocks and plain scalars do not always keep
// exactly ("\t\n" is written as a block it cannot read back). Those are
// double-quoted, where every character has an escape.
func YAMLStyle(v string) yaml.Style {
	if yaml11Implicit.MatchString(v) {
		return yaml.DoubleQuotedStyle
	}
	for _, line := range strings.Split(v, "\n") {
		if line != strings.Trim(line, " ") {
			return yaml.DoubleQuotedStyle
		}
	}
	for _, r := range v {
		switch {
		case r == '\n':
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff:
			return yaml.DoubleQuotedStyle
		}
	}
	return 0
}
