package containers

import (
	"net/http"

	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Request bodies are parsed for their shape only; what a key or a value may
// be is the service's to say, plus the seed's own limits in containers.go.
// Any content type is read as JSON, as the seed's clients send it, and the
// refusals are worded as the native API's.

// newBody returns the dialect's body reader, limited to limit bytes.
func newBody(limit int64) *dialect.Body {
	return &dialect.Body{Limit: limit, SyntaxFirst: true}
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	dialect.WriteJSON(w, dialect.ContentTypeJSON, status, v)
}
