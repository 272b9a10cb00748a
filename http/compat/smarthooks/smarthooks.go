// Package smarthooks serves the OneLogin Smart Hooks environment variable
// API (seed 000) over envy: /api/2/hooks/envs and /api/2/hooks/envs/{id},
// all in the scope "smart-hooks". Every var it writes is a secret, and no
// reply ever carries a value: only {id,name,created_at,updated_at}.
//
// It is a thin adapter: it parses the seed's request shapes, calls the
// same *service.Service as the native API (so validation, revisions, history,
// audit, watch events, permissions and rate limits are the native ones),
// and answers in the seed's shapes, with errors in the seed's
// {statusCode,name,message} envelope mapped in one table (errors.go).
//
// It imports the domain and the native http package (for mounting and
// authentication) and never a storage or crypto package.
package smarthooks

import (
	"encoding/base64"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// Scope is the envy scope that holds every Smart Hooks env var.
const Scope = "smart-hooks"

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *service.Service) {
	h := &handler{}
	h.API = dialect.New(api, svc, dialect.Config{
		Name: "smarthooks", WriteAudit: envy.AuditSmarthooksWrite, Words: words, Table: codes, Envelope: envelope,
		ContentType: wire.ContentTypeJSONUTF8, Begin: h.begin,
	})
	ids := &dialect.ByID[envVarJSON]{API: h.API, InvalidID: errInvalidID, NotFound: errNotFound, View: view, List: page}
	ids.Mount("/api/2/hooks/envs", func(allow string) string { return "The route serves only " + allow }, h.create)
	h.NotFound("/api/2/", "The requested resource was not found")
	api.Handle("POST /auth/oauth2/v2/token", http.HandlerFunc(h.signIn))
	api.Handle("/auth/oauth2/v2/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		h.Errors.Write(w, r, envy.Errorf(dialect.CodeMethodNotAllowed, "The route serves only POST"))
	}))
}

type handler struct {
	*dialect.API
}

// Request bodies are checked against the seed's schema only (an object
// with the documented string members and no others); what a name or a
// value may be is the service's to say. The schema errors read as
// OneLogin's validator writes them, as the seed's 422 shows. Any content
// type is read as JSON, as the seed's curl example would send it.
var words = wire.Words{
	TooLarge: func(limit int64) error {
		return envy.Errorf(envy.ETooLarge, "The request body is larger than %d bytes", limit)
	},
	Unreadable:  envy.Errorf(envy.EBadRequest, "The request body could not be read"),
	Empty:       envy.Errorf(envy.EBadRequest, "A JSON request body is required"),
	Malformed:   func(error) error { return envy.Errorf(envy.EBadRequest, "The request body is not valid JSON") },
	InvalidText: envy.Invalid(envy.Field("body", "invalid_utf8", "instance holds text that is not valid UTF-8")),
	NotObject:   envy.Invalid(envy.Field("body", "type_error", "instance is not of a type(s) object")),
	// The first unknown member is named, as the seed's validator does.
	Unknown: func(loc string, names []string) error {
		return envy.Invalid(envy.Field(loc+"."+names[0], "additional_property",
			"instance additionalProperty %s exists in instance when not allowed", strconv.Quote(names[0])))
	},
	Missing: func(loc, name string) error {
		return envy.Invalid(envy.Field(loc, "missing", "instance requires property %s", strconv.Quote(name)))
	},
	WrongType: func(loc, name, want string) error {
		return envy.Invalid(envy.Field(loc, "type_error", "instance.%s is not of a type(s) %s", name, want))
	},
}

// begin authenticates the request with the dialect's token formats.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	// Authenticate audits refusals against the path value "path".
	r.SetPathValue("path", Scope)
	ar, err := h.Authenticate(r, token(r), "", "")
	return ar, Scope, err
}

// token returns the token of "Authorization: bearer <token>" or, as the
// seed's 401 advises, "Authorization: bearer:<token>"; "bearer" in any case.
func token(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	const scheme = "bearer"
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return ""
	}
	rest := h[len(scheme):]
	switch rest[0] {
	case ':':
		return strings.TrimSpace(rest[1:])
	case ' ', '\t':
		return strings.TrimSpace(rest)
	}
	return ""
}

// envVarJSON is the seed's reply: never the value.
type envVarJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// timeFormat is RFC 3339 with milliseconds, as the seed shows
// ("2020-10-22T22:07:48.236Z").
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func view(v envy.VarView) envVarJSON {
	return envVarJSON{
		ID:        v.ID,
		Name:      v.Name,
		CreatedAt: v.CreatedAt.UTC().Format(timeFormat),
		UpdatedAt: v.UpdatedAt.UTC().Format(timeFormat),
	}
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, scope string) error {
	o, err := h.Body.Object(w, r)
	if err != nil {
		return err
	}
	name, value, err := dialect.NameValue(o)
	if err != nil {
		return err
	}
	v, err := dialect.Create(r.Context(), h.Svc, scope, name, dialect.Secret(value), func(name string) error {
		return envy.Errorf(envy.EConflict, "An env var named %s already exists", name)
	})
	if err != nil {
		return err
	}
	h.JSON(w, http.StatusCreated, view(v))
	return nil
}

var (
	errInvalidID = envy.Errorf(envy.EBadRequest, "Invalid env record ID")
	errNotFound  = envy.Errorf(envy.ENotFound, "Env record not found")
)

// Paging, as OneLogin's API 2 pages every list.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// page answers one page of a list: ?limit= (1 to 1000, default 50) and
// ?page= (from 1), or ?cursor= holding what a Before-Cursor or After-Cursor
// header gave; the reply is the page's items, with the headers Total-Count,
// Total-Pages, Current-Page, Page-Items, and Before-Cursor and After-Cursor
// when there is a page before or after.
func page(w http.ResponseWriter, r *http.Request, items []envVarJSON) (any, error) {
	q := r.URL.Query()
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, errCursor
		}
		if q, err = url.ParseQuery(string(raw)); err != nil {
			return nil, errCursor
		}
	}
	limit, err := positive(q.Get("limit"), "limit", defaultLimit, maxLimit)
	if err != nil {
		return nil, err
	}
	n, err := positive(q.Get("page"), "page", 1, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	pages := max(1, (len(items)+limit-1)/limit)
	from := min(len(items), (n-1)*limit)
	out := items[from:min(len(items), from+limit)]
	h := w.Header()
	h.Set("Total-Count", strconv.Itoa(len(items)))
	h.Set("Total-Pages", strconv.Itoa(pages))
	h.Set("Current-Page", strconv.Itoa(n))
	h.Set("Page-Items", strconv.Itoa(len(out)))
	if n > 1 {
		h.Set("Before-Cursor", cursor(limit, min(n-1, pages)))
	}
	if n < pages {
		h.Set("After-Cursor", cursor(limit, n+1))
	}
	return out, nil
}

// cursor is OneLogin's cursor form: base64 of "limit=N&page=P".
func cursor(limit, page int) string {
	return base64.StdEncoding.EncodeToString([]byte("limit=" + strconv.Itoa(limit) + "&page=" + strconv.Itoa(page)))
}

var errCursor = envy.Errorf(envy.EBadRequest, "Invalid cursor: send the value of a Before-Cursor or After-Cursor header")

// positive reads a paging parameter: def when absent, else 1 to most.
func positive(s, name string, def, most int) (int, error) {
	n, ok := wire.Int(s, int64(def), 1, int64(most))
	if !ok {
		return 0, envy.Errorf(envy.EBadRequest, "%s must be an integer from 1 to %d", name, most)
	}
	return int(n), nil
}
