// Package usersecrets serves the user secrets API of seed 002 over envy:
// /api/v1/user/secrets and /api/v1/user/secrets/{id}, in the scope
// "users/{owner}", the owner being the token's. A user secret is an envy
// secret whose description holds the secret's provider; replies are the
// seed's metadata with masked_value, never the value.
//
// It is a thin adapter: it parses the seed's request shapes, calls the
// same *envy.Service as the native API (so validation, revisions, history,
// audit, watch events, permissions and rate limits are the native ones),
// and answers in the seed's shapes, with every error in the seed's
// canonical envelope {code,detail,errors,type} mapped in one table
// (errors.go).
//
// It imports the domain and the native http package (for mounting and
// authentication) and never a storage or crypto package.
package usersecrets

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
)

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *envy.Service) {
	h := &handler{api: api, svc: svc}
	api.Handle("GET /api/v1/user/secrets", h.route(h.list))
	api.Handle("POST /api/v1/user/secrets", h.route(h.create))
	api.Handle("/api/v1/user/secrets", methodNotAllowed("GET, POST"))
	api.Handle("GET /api/v1/user/secrets/{id}", h.route(h.get))
	api.Handle("PUT /api/v1/user/secrets/{id}", h.route(h.update))
	api.Handle("DELETE /api/v1/user/secrets/{id}", h.route(h.delete))
	api.Handle("/api/v1/user/secrets/{id}", methodNotAllowed("GET, PUT, DELETE"))
}

type handler struct {
	api *envyhttp.Server
	svc *envy.Service
}

// ScopeOf returns the scope that holds an owner's user secrets.
func ScopeOf(owner string) string { return "users/" + owner }

// route authenticates the request, finds the scope of the token's owner
// and writes the handler's error in the dialect's envelope.
func (h *handler) route(fn func(w http.ResponseWriter, r *http.Request, scope string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok, _ := envyhttp.BearerToken(r)
		ar, err := h.api.Authenticate(r, tok)
		if err != nil {
			writeError(w, r, err)
			return
		}
		scope, err := ownerScope(ar.Context())
		if err == nil {
			err = fn(w, ar, scope)
		}
		if err != nil {
			writeError(w, ar, err)
		}
	})
}

// ownerScope returns the scope of the caller's owner, which must be one
// scope segment: an owner such as "a/b" or "jane doe" has no user secrets.
func ownerScope(ctx context.Context) (string, error) {
	owner := envy.CallerFrom(ctx).Token.Owner
	if strings.Contains(owner, "/") || envy.ValidateScopePath("token.owner", owner) != nil {
		return "", &envy.Error{Code: envy.EForbidden,
			Message: "this token's owner is not a valid scope segment, so it can hold no user secrets",
			Fields: []envy.FieldError{envy.Field("token.owner", "invalid_owner",
				"the token's owner must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99} to address users/{owner}")}}
	}
	return ScopeOf(owner), nil
}

// secretJSON is the seed's metadata, members in the seed's (alphabetical)
// order; never the value.
type secretJSON struct {
	CreatedAt   string  `json:"created_at"`
	ID          string  `json:"id"`
	MaskedValue string  `json:"masked_value"`
	Name        string  `json:"name"`
	Provider    *string `json:"provider"`
	UpdatedAt   string  `json:"updated_at"`
}

func view(v envy.VarView) secretJSON {
	out := secretJSON{
		CreatedAt: v.CreatedAt.UTC().Format(time.RFC3339),
		// The seed shows ids in upper case; envy accepts either.
		ID:        strings.ToUpper(v.ID),
		Name:      v.Name,
		UpdatedAt: v.UpdatedAt.UTC().Format(time.RFC3339),
	}
	switch {
	case v.MaskedValue != nil:
		out.MaskedValue = *v.MaskedValue
	case v.Value != nil:
		// A plain var written natively into the scope: masked all the same.
		out.MaskedValue = envy.Mask(*v.Value)
	}
	if v.Description != "" {
		p := v.Description
		out.Provider = &p
	}
	return out
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, scope string) error {
	vars, err := h.vars(r.Context(), scope)
	if err != nil {
		return err
	}
	out := make([]secretJSON, 0, len(vars))
	for _, v := range vars {
		out = append(out, view(v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, scope string) error {
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	if err := body.only("name", "value", "provider"); err != nil {
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
	provider, err := body.optionalString("provider")
	if err != nil {
		return err
	}
	sv, secret := envy.NewSensitive(value), true
	v, _, err := h.svc.SetVar(r.Context(), scope, name,
		envy.VarInput{Value: &sv, Secret: &secret, Description: provider},
		envy.SetOptions{Mode: envy.CreateOnly})
	if envy.ErrorCode(err) == envy.EConflict {
		return envy.Errorf(envy.EConflict, "a secret named %s already exists", name)
	}
	if err != nil {
		return fromBody(err)
	}
	writeJSON(w, http.StatusCreated, view(v))
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, scope string) error {
	v, err := h.byID(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, scope string) error {
	id := r.PathValue("id")
	if !validID(id) {
		return errInvalidID
	}
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	if err := body.only("value"); err != nil {
		return err
	}
	value, err := body.requiredString("value")
	if err != nil {
		return err
	}
	cur, err := h.byID(r.Context(), scope, id)
	if err != nil {
		return err
	}
	sv := envy.NewSensitive(value)
	v, _, err := h.svc.SetVar(r.Context(), scope, cur.Name, envy.VarInput{Value: &sv}, envy.SetOptions{Mode: envy.UpdateOnly, ScopeMustExist: true})
	if envy.ErrorCode(err) == envy.ENotFound {
		return errNotFound // deleted since the lookup
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, scope string) error {
	v, err := h.byID(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := h.svc.DeleteVar(r.Context(), scope, v.Name, envy.Cond{}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var (
	errInvalidID = envy.Invalid(envy.Field("path.id", "uuid_parsing", "id must be a UUID"))
	errNotFound  = envy.Errorf(envy.ENotFound, "Secret not found")
)

// vars returns the scope's vars, secrets masked. A scope that does not
// exist yet has none, when the caller may see it at all; one it may not
// see stays not found.
func (h *handler) vars(ctx context.Context, scope string) ([]envy.VarView, error) {
	l, err := h.svc.ListVars(ctx, scope, false)
	if envy.ErrorCode(err) == envy.ENotFound && sees(ctx, scope) {
		return nil, nil
	}
	return l.Items, err
}

// byID finds a var by its id, in any letter case. The service addresses
// vars by name, so this lists the scope.
func (h *handler) byID(ctx context.Context, scope, id string) (envy.VarView, error) {
	if !validID(id) {
		return envy.VarView{}, errInvalidID
	}
	vars, err := h.vars(ctx, scope)
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
