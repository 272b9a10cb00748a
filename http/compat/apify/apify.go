// Package apify serves Apify's Actor version environment variable API
// (seed 001) over envy:
// /v2/actors/{actorId}/versions/{versionNumber}/env-vars and
// .../env-vars/{envVarName}, and the same under /v2/acts/ (the path Apify
// keeps as an alias, and the one apify-client used before 2.23.4), both in
// the scope "acts/{actorId}/versions/{versionNumber}". Replies are wrapped in
// {"data":…}; isSecret is envy's secret flag, and a secret's value is never
// returned, as on Apify. The token is read from "Authorization: Bearer" or,
// as Apify allows, from ?token=.
//
// It is a thin adapter: it parses the seed's request shapes, calls the
// same *service.Service as the native API (so validation, revisions, history,
// audit, watch events, permissions and rate limits are the native ones),
// and answers in the seed's shapes, with errors in Apify's
// {"error":{"type","message"}} envelope mapped in one table (errors.go).
//
// It imports the domain and the native http package (for mounting and
// authentication) and never a storage or crypto package.
package apify

import (
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// collections are the paths of a version's env vars: Apify's canonical
// one and its alias.
var collections = []string{
	"/v2/actors/{actorId}/versions/{versionNumber}/env-vars",
	"/v2/acts/{actorId}/versions/{versionNumber}/env-vars",
}

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *service.Service) {
	h := &handler{}
	h.API = dialect.New(api, svc, dialect.Config{
		Name: "apify", WriteAudit: envy.AuditApifyWrite, Words: words, Table: codes, Envelope: envelope,
		ContentType: wire.ContentTypeJSONUTF8, Begin: h.begin,
	})
	only := func(allow string) string {
		return "This API endpoint can only be accessed using the following HTTP methods: " + allow
	}
	for _, c := range collections {
		h.Handle(c, only, dialect.Routes{"GET": h.list, "POST": h.create})
		// Apify also documents POST as an update ("Update environment variable (POST)").
		h.Handle(c+"/{envVarName}", only, dialect.Routes{"GET": h.get, "PUT": h.update, "POST": h.update, "DELETE": h.delete})
	}
	h.NotFound("/v2/", "This API endpoint does not exist.")
}

type handler struct {
	*dialect.API
}

// Request bodies are checked against the seed's EnvVar schema only (an
// object with the documented members, of their types, and no others); what
// a name or a value may be is the service's to say.

// errMalformed is the seed's own 400, word for word.
var errMalformed = envy.Errorf(envy.EBadRequest, "Invalid input: The request body contains invalid data.")

var words = wire.Words{
	Encoding: func(enc string) error {
		return envy.Errorf(codeUnsupportedEncoding, "Content-Encoding %s is not supported; use gzip, br or deflate.", strconv.Quote(enc))
	},
	TooLarge: func(limit int64) error {
		return envy.Errorf(envy.ETooLarge, "Invalid input: The request body is larger than %d bytes.", limit)
	},
	Unreadable:  errMalformed,
	Empty:       envy.Errorf(envy.EBadRequest, "Invalid input: The request body is empty; it must be a JSON object."),
	Malformed:   func(error) error { return errMalformed },
	InvalidText: envy.Invalid(envy.Field("body", "invalid_utf8", "the request body holds text that is not valid UTF-8")),
	NotObject:   envy.Invalid(envy.Field("body", "type_error", "the request body must be a JSON object")),
	WrongType: func(loc, name, want string) error {
		if want == "boolean" {
			want += " or null" // the seed's isSecret is "boolean | null"
		}
		return envy.Invalid(envy.Field(loc, "type_error", "%s must be a %s", name, want))
	},
}

// ScopeOf returns the envy scope of an Actor version.
func ScopeOf(actorID, versionNumber string) string {
	return "acts/" + actorID + "/versions/" + versionNumber
}

// begin authenticates the request (Bearer header, else ?token=) and finds
// its scope.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	scope, scopeErr := scopeOf(r)
	if scopeErr == nil {
		// Authenticate audits refusals against the path value "path".
		r.SetPathValue("path", scope)
	}
	tok, ok := envyhttp.BearerToken(r)
	if !ok {
		tok = r.URL.Query().Get("token")
	}
	ar, err := h.Authenticate(r, tok, codeNoToken, "")
	if err != nil {
		return r, "", err
	}
	return ar, scope, scopeErr
}

// scopeOf returns the scope of the request's Actor version. The mux
// unescapes path values, so "%2F" would smuggle a "/" into them: each must
// be one scope segment.
func scopeOf(r *http.Request) (string, error) {
	for _, p := range []string{"actorId", "versionNumber"} {
		v := r.PathValue(p)
		if strings.Contains(v, "/") || envy.ValidateScopePath(p, v) != nil {
			return "", envy.Invalid(envy.Field("path."+p, "invalid_segment", "%s must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}", p))
		}
	}
	return ScopeOf(r.PathValue("actorId"), r.PathValue("versionNumber")), nil
}

// envVarJSON is the seed's EnvVar object. A secret has no value member:
// Apify never returns a secret's value.
type envVarJSON struct {
	Name     string  `json:"name"`
	Value    *string `json:"value,omitempty"`
	IsSecret bool    `json:"isSecret"`
}

func view(v envy.VarView) envVarJSON {
	// A var that refers to a secret is masked on a read as a secret is
	// (Value nil, MaskedValue set): it is shown as one, never as a plain
	// var without a value, a shape Apify never answers.
	out := envVarJSON{Name: v.Name, IsSecret: v.Secret || v.Value == nil && v.MaskedValue != nil}
	if v.Value != nil && !out.IsSecret {
		s := v.Value.Reveal()
		out.Value = &s
	}
	return out
}

type dataJSON struct {
	Data any `json:"data"`
}

// listJSON is the seed's list of env vars.
type listJSON struct {
	Total int          `json:"total"`
	Items []envVarJSON `json:"items"`
}

// list answers the version's env vars by name, a page of them when the
// request asks with Apify's offset, limit and desc; total counts them all.
func (h *handler) list(w http.ResponseWriter, r *http.Request, scope string) error {
	page, err := pageOf(r)
	if err != nil {
		return err
	}
	// A version without env vars has no scope yet.
	items, err := dialect.Views(r.Context(), h.Svc, scope, view)
	if err != nil {
		return err
	}
	total := len(items)
	if page.desc {
		slices.Reverse(items)
	}
	items = items[min(page.offset, total):]
	if page.limit > 0 {
		items = items[:min(page.limit, len(items))]
	}
	h.JSON(w, http.StatusOK, dataJSON{listJSON{Total: total, Items: items}})
	return nil
}

// page is a list request's window: Apify's offset, limit (0: all) and
// desc.
type page struct {
	offset, limit int
	desc          bool
}

func pageOf(r *http.Request) (page, error) {
	var p page
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		v    *int
	}{{"offset", &p.offset}, {"limit", &p.limit}} {
		n, ok := wire.Int(q.Get(f.name), 0, 0, math.MaxInt)
		if !ok {
			return p, envy.Invalid(envy.Field("query."+f.name, "invalid", "%s must be a non-negative integer", f.name))
		}
		*f.v = int(n)
	}
	switch q.Get("desc") {
	case "", "0", "false":
	case "1", "true":
		p.desc = true
	default:
		return p, envy.Invalid(envy.Field("query.desc", "invalid", "desc must be true, false, 1 or 0"))
	}
	return p, nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, scope string) error {
	o, err := h.Body.Object(w, r)
	if err != nil {
		return err
	}
	o.OmitNull("isSecret")
	name, value, err := dialect.NameValue(o, "isSecret")
	if err != nil {
		return err
	}
	sv := envy.NewSensitive(value)
	in := envy.VarInput{Value: &sv, Secret: new(bool)}
	if secret, err := o.Bool("isSecret"); err != nil {
		return err
	} else if secret != nil {
		in.Secret = secret
	}
	v, err := dialect.Create(r.Context(), h.Svc, scope, name, in, func(name string) error {
		return envy.Errorf(envy.EConflict, "Environment variable with name %s already exists", name)
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", strings.TrimSuffix(r.URL.EscapedPath(), "/")+"/"+url.PathEscape(v.Name))
	h.JSON(w, http.StatusCreated, dataJSON{view(v)})
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, scope string) error {
	v, err := h.Svc.GetVarResolved(r.Context(), scope, r.PathValue("envVarName"), false)
	if err != nil {
		return notFound(err)
	}
	h.JSON(w, http.StatusOK, dataJSON{view(v)})
	return nil
}

// update sets the members the body has and keeps the others, as the seed
// says ("If the object does not define a specific property, its value will
// not be updated").
func (h *handler) update(w http.ResponseWriter, r *http.Request, scope string) error {
	name := r.PathValue("envVarName")
	body, err := h.Body.Object(w, r)
	if err != nil {
		return err
	}
	body.OmitNull("isSecret")
	if err := body.Only("name", "value", "isSecret"); err != nil {
		return err
	}
	// Names are immutable in envy: a name may only repeat the URL's.
	if n, err := body.StringPtr("name"); err != nil {
		return err
	} else if n != nil && *n != name {
		return envy.Invalid(envy.Field("body.name", "immutable", "name can not be changed: delete the variable and create one under the new name"))
	}
	var in envy.VarInput
	if v, err := body.StringPtr("value"); err != nil {
		return err
	} else if v != nil {
		sv := envy.NewSensitive(*v)
		in.Value = &sv
	}
	if in.Secret, err = body.Bool("isSecret"); err != nil {
		return err
	}
	v, _, err := h.Svc.SetVar(r.Context(), scope, name, in, envy.SetOptions{Mode: envy.UpdateOnly, ScopeMustExist: true})
	if err != nil {
		return notFound(err)
	}
	h.JSON(w, http.StatusOK, dataJSON{view(v)})
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, scope string) error {
	if _, err := h.Svc.DeleteVar(r.Context(), scope, r.PathValue("envVarName"), envy.Cond{}); err != nil {
		return notFound(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// notFound words a missing var or version as Apify does; other errors
// pass as they are.
func notFound(err error) error {
	if envy.ErrorCode(err) == envy.ENotFound {
		return envy.Errorf(envy.ENotFound, "Environment variable was not found")
	}
	return err
}
