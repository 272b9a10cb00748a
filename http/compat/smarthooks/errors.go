package smarthooks

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codes is the one table that maps the domain's error codes to the
// dialect's answers. Statuses are the native ones, and each error's name
// is the http-errors class name of its status (see className), as
// OneLogin's API answers. An empty message means the error's own, which
// never holds a value; the others are fixed, such as the seed's 401.
var codes = dialect.Answers{
	envy.EBadRequest:             {},
	envy.EUnauthenticated:        {Message: "The request requires user authentication."},
	envy.EForbidden:              {},
	envy.ENotFound:               {},
	envy.EConflict:               {},
	envy.EPrecondition:           {},
	envy.ETooLarge:               {},
	envy.EUnsupportedMedia:       {},
	envy.EInvalid:                {},
	envy.ERateLimited:            {Message: "Too Many Requests"},
	envy.EInternal:               {Message: "Internal Server Error"},
	envy.EUnavailable:            {Message: "Service Unavailable"},
	dialect.CodeMethodNotAllowed: {},
	dialect.CodeNoRoute:          {},
	// The token endpoint's own: its name is the Type, not the class name.
	codeAuthFailure: {Type: "Unauthorized", Status: http.StatusUnauthorized, Message: "Authentication Failure"},
	codeBadGrant:    {Type: "BadRequest", Status: http.StatusBadRequest, Message: "grant_type is incorrect/absent"},
}.Table()

// className is the name the http-errors package (which OneLogin's API
// answers with) gives the error class of a status: the words of its reason
// phrase capitalized and joined, letters and digits only, with "Error"
// after them unless they end so. http-errors takes its phrases from the
// statuses package, which calls 413 "Payload Too Large" (RFC 9110) where
// Go keeps "Request Entity Too Large".
func className(status int) string {
	phrase := http.StatusText(status)
	if status == http.StatusRequestEntityTooLarge {
		phrase = "Payload Too Large"
	}
	var b strings.Builder
	for _, word := range strings.Fields(phrase) {
		for i, r := range word {
			if i == 0 {
				r = unicode.ToUpper(r)
			}
			if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				b.WriteRune(r)
			}
		}
	}
	name := b.String()
	if !strings.HasSuffix(name, "Error") {
		name += "Error"
	}
	return name
}

// errorJSON is the seed's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// envelope answers e in the seed's envelope; a field error says only its
// message, which names its field and never a value.
func envelope(c dialect.Entry, e *envy.Error) any {
	name := c.Type
	if name == "" {
		name = className(c.Status)
	}
	return errorJSON{StatusCode: c.Status, Name: name, Message: c.Text(e, dialect.FieldMsg)}
}
