package dotenv

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Format is a file format for variables.
type Format string

// The formats.
const (
	FormatDotenv Format = "dotenv" // NAME=value lines
	FormatJSON   Format = "json"   // {"NAME": "value", …}
	FormatYAML   Format = "yaml"   // NAME: value
	FormatShell  Format = "shell"  // export NAME='value'
	// FormatDocker is what `docker run --env-file` reads: NAME=value,
	// unquoted, one line each.
	FormatDocker Format = "docker"
	// FormatDotenvExport is dotenv with `export ` before every line.
	FormatDotenvExport Format = "dotenv-export"
)

// Formats lists the formats by name, for help texts.
var Formats = []Format{FormatDotenv, FormatJSON, FormatYAML, FormatShell, FormatDocker, FormatDotenvExport}

// ParseFormatName returns the format named s; "env", "yml" and "sh" are
// accepted as other names of dotenv, yaml and shell.
func ParseFormatName(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "dotenv", "env", ".env":
		return FormatDotenv, nil
	case "json":
		return FormatJSON, nil
	case "yaml", "yml":
		return FormatYAML, nil
	case "shell", "sh", "bash", "export":
		return FormatShell, nil
	case "docker":
		return FormatDocker, nil
	case "dotenv-export", "env-export":
		return FormatDotenvExport, nil
	}
	return "", fmt.Errorf("unknown format %q (want dotenv, dotenv-export, docker, json, yaml or shell)", s)
}

// FormatFromPath guesses a file's format from its name: .json, .yaml or
// .yml, .sh; anything else (.env, .env.local, no extension) is dotenv.
func FormatFromPath(path string) Format {
	base := strings.ToLower(filepath.Base(path))
	switch filepath.Ext(base) {
	case ".json":
		return FormatJSON
	case ".yaml", ".yml":
		return FormatYAML
	case ".sh", ".bash", ".zsh":
		return FormatShell
	}
	return FormatDotenv
}

// ParseFormat reads variables in the given format, in file order.
func ParseFormat(r io.Reader, format Format) ([]KV, error) {
	switch format {
	case FormatDotenv, FormatDotenvExport, "":
		return Parse(r)
	case FormatDocker:
		return ParseDocker(r)
	case FormatJSON:
		return ParseJSON(r)
	case FormatYAML:
		return ParseYAML(r)
	case FormatShell:
		return ParseShell(r)
	}
	return nil, fmt.Errorf("unknown format %q", string(format))
}

// WriteFormat writes variables in the given format, in the given order.
func WriteFormat(w io.Writer, format Format, kvs []KV) error {
	switch format {
	case FormatDotenv, "":
		return Write(w, kvs)
	case FormatJSON:
		return WriteJSON(w, kvs)
	case FormatYAML:
		return WriteYAML(w, kvs)
	case FormatShell:
		return WriteShell(w, kvs)
	case FormatDocker:
		return WriteDocker(w, kvs)
	case FormatDotenvExport:
		return WriteDotenvExport(w, kvs)
	}
	return fmt.Errorf("unknown format %q", string(format))
}

// ParseFlagged is ParseFormat, with what the file says of its vars'
// secret flags (dotenv and dotenv-export: SecretMarker lines; JSON: the
// {"value","secret"} form); nil for the other formats.
func ParseFlagged(r io.Reader, format Format) ([]KV, Flags, error) {
	switch format {
	case FormatDotenv, FormatDotenvExport, "":
		return parseDotenv(r)
	case FormatJSON:
		return parseJSON(r)
	}
	kvs, err := ParseFormat(r, format)
	return kvs, nil, err
}

// WriteFlagged is WriteFormat, writing flags where the format keeps them:
// dotenv and dotenv-export mark each secret with a SecretMarker line
// (a var flags holds as false gets nothing), JSON writes each var flags
// names as {"value","secret"}; the other formats leave flags out.
func WriteFlagged(w io.Writer, format Format, kvs []KV, flags Flags) error {
	switch format {
	case FormatDotenv, "":
		return writeDotenv(w, kvs, "", flags)
	case FormatDotenvExport:
		return writeDotenv(w, kvs, "export ", flags)
	case FormatJSON:
		return writeJSON(w, kvs, flags)
	}
	return WriteFormat(w, format, kvs)
}
