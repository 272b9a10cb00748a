// Package smarthooks serves the OneLogin Smart Hooks environment variable
// API (seed 000) over envy: /api/2/hooks/envs and /api/2/hooks/envs/{id},
// all in the scope "smart-hooks". Every var it writes is a secret, and no
// reply ever carries a value: only {id,name,created_at,updated_at}.
//
// It is a thin adapter: it parses the seed's request shapes, calls the
// same *envy.Service as the native API (so validation, revisions, history,
// audit, watch events, permissions and rate limits are the native ones),
// and answers in the seed's shapes, with errors in the seed's
// {statusCode,name,message} envelope mapped in one table (errors.go).
//
// It imports the domain and the native http package (for mounting and
// authentication) and never a storage or crypto package.
package smarthooks

import (
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Scope is the envy scope that holds every Smart Hooks env var.
const Scope = "smart-hooks"

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *envy.Service) {
	h := &handler{
		api:    api,
		svc:    svc,
		body:   newBody(api.MaxBody()),
		ids:    &dialect.ByID{Svc: svc, InvalidID: errInvalidID, NotFound: errNotFound},
		errors: dialect.NewErrors(api, "smarthooks", codes, envelope, dialect.ContentTypeJSONUTF8),
	}
	api.Handle("GET /api/2/hooks/envs", h.route(h.list))
	api.Handle("POST /api/2/hooks/envs", h.route(h.create))
	api.Handle("/api/2/hooks/envs", methodNotAllowed("GET, POST"))
	api.Handle("GET /api/2/hooks/envs/{id}", h.route(h.get))
	api.Handle("PUT /api/2/hooks/envs/{id}", h.route(h.update))
	api.Handle("DELETE /api/2/hooks/envs/{id}", h.route(h.delete))
	api.Handle("/api/2/hooks/envs/{id}", methodNotAllowed("GET, PUT, DELETE"))
}

type handler struct {
	api    *envyhttp.Server
	svc    *envy.Service
	body   *dialect.Body
	ids    *dialect.ByID
	errors *dialect.Errors[codeEntry]
}

// route serves fn on the dialect's one scope, its errors in the dialect's
// envelope.
func (h *handler) route(fn func(w http.ResponseWriter, r *http.Request, scope string) error) http.Handler {
	return dialect.Route(h.begin, fn, h.errors.Write)
}

// begin authenticates the request with the dialect's token formats.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	// Authenticate audits refusals against the path value "path".
	r.SetPathValue("path", Scope)
	ar, err := h.api.Authenticate(r, token(r))
	if err != nil {
		return r, "", err
	}
	return ar, Scope, nil
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

func (h *handler) list(w http.ResponseWriter, r *http.Request, scope string) error {
	vars, err := dialect.Vars(r.Context(), h.svc, scope)
	if err != nil {
		return err
	}
	out := make([]envVarJSON, 0, len(vars))
	for _, v := range vars {
		out = append(out, view(v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, scope string) error {
	body, err := h.readObject(w, r)
	if err != nil {
		return err
	}
	if err := body.only("name", "value"); err != nil {
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
	sv, secret := envy.NewSensitive(value), true
	v, _, err := h.svc.SetVar(r.Context(), scope, name, envy.VarInput{Value: &sv, Secret: &secret}, envy.SetOptions{Mode: envy.CreateOnly})
	if envy.ErrorCode(err) == envy.EConflict {
		return envy.Errorf(envy.EConflict, "An env var named %s already exists", name)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, view(v))
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, scope string) error {
	v, err := h.ids.Get(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, scope string) error {
	id := r.PathValue("id")
	if err := h.ids.Check(id); err != nil {
		return err
	}
	body, err := h.readObject(w, r)
	if err != nil {
		return err
	}
	// Names are immutable: the seed refuses a "name" here with 422.
	if err := body.only("value"); err != nil {
		return err
	}
	value, err := body.requiredString("value")
	if err != nil {
		return err
	}
	v, err := h.ids.SetValue(r.Context(), scope, id, value)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, scope string) error {
	if err := h.ids.Delete(r.Context(), scope, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var (
	errInvalidID = envy.Errorf(envy.EBadRequest, "Invalid env record ID")
	errNotFound  = envy.Errorf(envy.ENotFound, "Env record not found")
)
