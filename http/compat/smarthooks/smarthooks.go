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
	"context"
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
)

// Scope is the envy scope that holds every Smart Hooks env var.
const Scope = "smart-hooks"

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *envy.Service) {
	h := &handler{api: api, svc: svc}
	api.Handle("GET /api/2/hooks/envs", h.route(h.list))
	api.Handle("POST /api/2/hooks/envs", h.route(h.create))
	api.Handle("/api/2/hooks/envs", methodNotAllowed("GET, POST"))
	api.Handle("GET /api/2/hooks/envs/{id}", h.route(h.get))
	api.Handle("PUT /api/2/hooks/envs/{id}", h.route(h.update))
	api.Handle("DELETE /api/2/hooks/envs/{id}", h.route(h.delete))
	api.Handle("/api/2/hooks/envs/{id}", methodNotAllowed("GET, PUT, DELETE"))
}

type handler struct {
	api *envyhttp.Server
	svc *envy.Service
}

// route authenticates the request with the dialect's token formats and
// writes the handler's error in the dialect's envelope.
func (h *handler) route(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// Authenticate audits refusals against the path value "path".
		r.SetPathValue("path", Scope)
		ar, err := h.api.Authenticate(r, token(r))
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := fn(w, ar); err != nil {
			writeError(w, ar, err)
		}
	})
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

func (h *handler) list(w http.ResponseWriter, r *http.Request) error {
	vars, err := h.vars(r.Context())
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

func (h *handler) create(w http.ResponseWriter, r *http.Request) error {
	body, err := readObject(w, r)
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
	v, _, err := h.svc.SetVar(r.Context(), Scope, name, envy.VarInput{Value: &sv, Secret: &secret}, envy.SetOptions{Mode: envy.CreateOnly})
	if envy.ErrorCode(err) == envy.EConflict {
		return envy.Errorf(envy.EConflict, "An env var named %s already exists", name)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, view(v))
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.byID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validID(id) {
		return errInvalidID
	}
	body, err := readObject(w, r)
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
	cur, err := h.byID(r.Context(), id)
	if err != nil {
		return err
	}
	sv := envy.NewSensitive(value)
	v, _, err := h.svc.SetVar(r.Context(), Scope, cur.Name, envy.VarInput{Value: &sv}, envy.SetOptions{Mode: envy.UpdateOnly, ScopeMustExist: true})
	if envy.ErrorCode(err) == envy.ENotFound {
		return errNotFound // deleted since the lookup
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) error {
	v, err := h.byID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := h.svc.DeleteVar(r.Context(), Scope, v.Name, envy.Cond{}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var (
	errInvalidID = envy.Errorf(envy.EBadRequest, "Invalid env record ID")
	errNotFound  = envy.Errorf(envy.ENotFound, "Env record not found")
)

// vars returns the scope's vars, secrets masked. A scope that does not
// exist yet has none, when the caller may see it at all; one it may not
// see stays not found.
func (h *handler) vars(ctx context.Context) ([]envy.VarView, error) {
	l, err := h.svc.ListVars(ctx, Scope, false)
	if envy.ErrorCode(err) == envy.ENotFound && sees(ctx, Scope) {
		return nil, nil
	}
	return l.Items, err
}

// byID finds a var by its id, in any letter case. The service addresses
// vars by name, so this lists the scope.
func (h *handler) byID(ctx context.Context, id string) (envy.VarView, error) {
	if !validID(id) {
		return envy.VarView{}, errInvalidID
	}
	vars, err := h.vars(ctx)
	if err != nil {
		return envy.VarView{}, err
	}
	for _, v := range vars {
		if strings.EqualFold(v.ID, id) {
			return v, nil
		}
	}
	return envy.VarView{}, errNotFound
}

// sees reports whether the caller holds any grant on scope. The service
// answers a scope the caller can't see as not found, exactly as one that
// does not exist; when it can see it, not found means it does not exist.
func sees(ctx context.Context, scope string) bool {
	t := envy.CallerFrom(ctx).Token
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if len(g.Actions) > 0 && envy.MatchGlob(g.Scopes, scope) {
			return true
		}
	}
	return false
}

// validID reports whether id is a UUID (8-4-4-4-12 hex digits, any case).
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
