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
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *envy.Service) {
	h := &handler{
		api:    api,
		svc:    svc,
		body:   newBody(api.MaxBody()),
		ids:    &dialect.ByID{Svc: svc, InvalidID: errInvalidID, NotFound: errNotFound},
		errors: dialect.NewErrors(api, "usersecrets", codes, envelope, dialect.ContentTypeJSON),
	}
	api.Handle("GET /api/v1/user/secrets", h.route(h.list))
	api.Handle("POST /api/v1/user/secrets", h.route(h.create))
	api.Handle("/api/v1/user/secrets", methodNotAllowed("GET, POST"))
	api.Handle("GET /api/v1/user/secrets/{id}", h.route(h.get))
	api.Handle("PUT /api/v1/user/secrets/{id}", h.route(h.update))
	api.Handle("DELETE /api/v1/user/secrets/{id}", h.route(h.delete))
	api.Handle("/api/v1/user/secrets/{id}", methodNotAllowed("GET, PUT, DELETE"))
}

type handler struct {
	api    *envyhttp.Server
	svc    *envy.Service
	body   *dialect.Body
	ids    *dialect.ByID
	errors *dialect.Errors[codeEntry]
}

// ScopeOf returns the scope that holds an owner's user secrets.
func ScopeOf(owner string) string { return "users/" + owner }

// route serves fn on the scope of the token's owner, its errors in the
// dialect's envelope.
func (h *handler) route(fn func(w http.ResponseWriter, r *http.Request, scope string) error) http.Handler {
	return dialect.Route(h.begin, fn, h.errors.Write)
}

// begin authenticates the request and finds the scope of the token's owner.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	tok, _ := envyhttp.BearerToken(r)
	ar, err := h.api.Authenticate(r, tok)
	if err != nil {
		return r, "", err
	}
	scope, err := ownerScope(ar.Context())
	return ar, scope, err
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
	vars, err := dialect.Vars(r.Context(), h.svc, scope)
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
	body, err := h.readObject(w, r)
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
	errInvalidID = envy.Invalid(envy.Field("path.id", "uuid_parsing", "id must be a UUID"))
	errNotFound  = envy.Errorf(envy.ENotFound, "Secret not found")
)
