// Package apify serves Apify's Actor version environment variable API
// (seed 001) over envy: /v2/acts/{actorId}/versions/{versionNumber}/env-vars
// and .../env-vars/{envVarName}, in the scope
// "acts/{actorId}/versions/{versionNumber}". Replies are wrapped in
// {"data":…}; isSecret is envy's secret flag, and a secret's value is never
// returned, as on Apify. The token is read from "Authorization: Bearer" or,
// as Apify allows, from ?token=.
//
// It is a thin adapter: it parses the seed's request shapes, calls the
// same *envy.Service as the native API (so validation, revisions, history,
// audit, watch events, permissions and rate limits are the native ones),
// and answers in the seed's shapes, with errors in Apify's
// {"error":{"type","message"}} envelope mapped in one table (errors.go).
//
// It imports the domain and the native http package (for mounting and
// authentication) and never a storage or crypto package.
package apify

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

const (
	collection = "/v2/acts/{actorId}/versions/{versionNumber}/env-vars"
	item       = collection + "/{envVarName}"
)

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *envy.Service) {
	h := &handler{
		api:    api,
		svc:    svc,
		body:   newBody(api.MaxBody()),
		errors: dialect.NewErrors(api, "apify", codes, envelope, dialect.ContentTypeJSONUTF8),
	}
	api.Handle("GET "+collection, h.route(h.list))
	api.Handle("POST "+collection, h.route(h.create))
	api.Handle(collection, methodNotAllowed("GET, POST"))
	api.Handle("GET "+item, h.route(h.get))
	api.Handle("PUT "+item, h.route(h.update))
	// Apify also documents POST as an update ("Update environment variable (POST)").
	api.Handle("POST "+item, h.route(h.update))
	api.Handle("DELETE "+item, h.route(h.delete))
	api.Handle(item, methodNotAllowed("GET, PUT, POST, DELETE"))
}

type handler struct {
	api    *envyhttp.Server
	svc    *envy.Service
	body   *dialect.Body
	errors *dialect.Errors[codeEntry]
}

// ScopeOf returns the envy scope of an Actor version.
func ScopeOf(actorID, versionNumber string) string {
	return "acts/" + actorID + "/versions/" + versionNumber
}

// route serves fn on the request's Actor version, its errors in the
// dialect's envelope.
func (h *handler) route(fn func(w http.ResponseWriter, r *http.Request, scope string) error) http.Handler {
	return dialect.Route(h.begin, fn, h.errors.Write)
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
	ar, err := h.api.Authenticate(r, tok)
	if err != nil {
		if tok == "" && envy.ErrorCode(err) == envy.EUnauthenticated {
			err = &envy.Error{Code: codeNoToken, Message: "no token"}
		}
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
	out := envVarJSON{Name: v.Name, IsSecret: v.Secret}
	if v.Value != nil && !v.Secret {
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

func (h *handler) list(w http.ResponseWriter, r *http.Request, scope string) error {
	// A version without env vars has no scope yet.
	vars, err := dialect.Vars(r.Context(), h.svc, scope)
	if err != nil {
		return err
	}
	items := make([]envVarJSON, 0, len(vars))
	for _, v := range vars {
		items = append(items, view(v))
	}
	writeJSON(w, http.StatusOK, dataJSON{listJSON{Total: len(items), Items: items}})
	return nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, scope string) error {
	body, err := h.readObject(w, r)
	if err != nil {
		return err
	}
	if err := body.only("name", "value", "isSecret"); err != nil {
		return err
	}
	name, err := body.requiredString("name")
	if err != nil {
		return err
	}
	value, err := body.requiredString("value")
	if err != nil {
		return err
	}
	secret, err := body.optionalBool("isSecret")
	if err != nil {
		return err
	}
	if secret == nil {
		secret = new(bool)
	}
	sv := envy.NewSensitive(value)
	v, _, err := h.svc.SetVar(r.Context(), scope, name, envy.VarInput{Value: &sv, Secret: secret}, envy.SetOptions{Mode: envy.CreateOnly})
	if envy.ErrorCode(err) == envy.EConflict {
		return envy.Errorf(envy.EConflict, "Environment variable with name %s already exists", name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v2/acts/"+url.PathEscape(r.PathValue("actorId"))+"/versions/"+
		url.PathEscape(r.PathValue("versionNumber"))+"/env-vars/"+url.PathEscape(v.Name))
	writeJSON(w, http.StatusCreated, dataJSON{view(v)})
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, scope string) error {
	v, err := h.svc.GetVar(r.Context(), scope, r.PathValue("envVarName"), false)
	if err != nil {
		return notFound(err)
	}
	writeJSON(w, http.StatusOK, dataJSON{view(v)})
	return nil
}

// update sets the members the body has and keeps the others, as the seed
// says ("If the object does not define a specific property, its value will
// not be updated").
func (h *handler) update(w http.ResponseWriter, r *http.Request, scope string) error {
	name := r.PathValue("envVarName")
	body, err := h.readObject(w, r)
	if err != nil {
		return err
	}
	if err := body.only("name", "value", "isSecret"); err != nil {
		return err
	}
	// Names are immutable in envy: a name may only repeat the URL's.
	if n, err := body.optionalString("name"); err != nil {
		return err
	} else if n != nil && *n != name {
		return envy.Invalid(envy.Field("body.name", "immutable", "name can not be changed: delete the variable and create one under the new name"))
	}
	var in envy.VarInput
	if v, err := body.optionalString("value"); err != nil {
		return err
	} else if v != nil {
		sv := envy.NewSensitive(*v)
		in.Value = &sv
	}
	if in.Secret, err = body.optionalBool("isSecret"); err != nil {
		return err
	}
	v, _, err := h.svc.SetVar(r.Context(), scope, name, in, envy.SetOptions{Mode: envy.UpdateOnly, ScopeMustExist: true})
	if err != nil {
		return notFound(err)
	}
	writeJSON(w, http.StatusOK, dataJSON{view(v)})
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, scope string) error {
	if _, err := h.svc.DeleteVar(r.Context(), scope, r.PathValue("envVarName"), envy.Cond{}); err != nil {
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
