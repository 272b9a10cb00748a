// Package usersecrets serves the user secrets API of seed 002 over envy:
// /api/v1/user/secrets and /api/v1/user/secrets/{id}, in the scope
// "users/{owner}", the owner being the token's. A user secret is an envy
// secret whose description holds the secret's provider; replies are the
// seed's metadata with masked_value, never the value.
//
// It is a thin adapter: it parses the seed's request shapes, calls the
// same *service.Service as the native API (so validation, revisions, history,
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
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// Register mounts the dialect's routes on api.
func Register(api *envyhttp.Server, svc *service.Service) {
	h := &handler{}
	h.API = dialect.New(api, svc, dialect.Config{
		Name: "usersecrets", WriteAudit: envy.AuditUsersecretsWrite, Words: words, Table: codes, Envelope: envelope,
		ContentType: wire.ContentTypeJSON, Begin: h.begin,
	})
	ids := &dialect.ByID[secretJSON]{API: h.API, InvalidID: errInvalidID, NotFound: errNotFound, View: view,
		List: func(_ http.ResponseWriter, _ *http.Request, items []secretJSON) (any, error) {
			return listJSON{Secrets: items, Total: len(items)}, nil
		}}
	ids.Mount("/api/v1/user/secrets", func(allow string) string { return "this route serves only " + allow }, h.create)
	h.NotFound("/api/v1/user/", "no such route")
}

type handler struct {
	*dialect.API
}

// Request bodies are checked against the seed's schemas only (an object
// with the documented string members and no others); what a name or a
// value may be is the service's to say. Field error types follow the
// validation errors of the seed's FastAPI-style envelope.
var words = wire.Words{
	Empty: envy.Invalid(envy.Field("body", "missing", "a JSON request body is required")),
	Malformed: func(error) error {
		return &envy.Error{Code: envy.EBadRequest, Message: "the request body is not valid JSON",
			Fields: []envy.FieldError{envy.Field("body", "json_invalid", "the request body is not valid JSON")}}
	},
	InvalidText: envy.Invalid(envy.Field("body", "invalid_utf8", "the request body holds text that is not valid UTF-8")),
	NotObject:   envy.Invalid(envy.Field("body", "dict_type", "the request body must be a JSON object")),
	Unknown: func(loc string, names []string) error {
		bad := make([]envy.FieldError, len(names))
		for i, n := range names {
			bad[i] = envy.Field(loc+"."+n, "extra_forbidden", "unknown field %q", n)
		}
		return envy.Invalid(bad...)
	},
	WrongType: func(loc, name, want string) error {
		return envy.Invalid(envy.Field(loc, want+"_type", "%s must be a %s", name, want))
	},
}

// ScopeOf returns the scope that holds an owner's user secrets.
func ScopeOf(owner string) string { return "users/" + owner }

// begin authenticates the request and finds the scope of the token's owner.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	tok, _ := envyhttp.BearerToken(r)
	ar, err := h.Authenticate(r, tok, "", "")
	if err != nil {
		return r, "", err
	}
	scope, err := ownerScope(ar.Context())
	return ar, scope, err
}

// ownerScope returns the scope of the caller's owner, which must be one
// scope segment: an owner such as "a/b" or "jane doe" has no user secrets.
func ownerScope(ctx context.Context) (string, error) {
	owner := service.CallerFrom(ctx).Token.Owner
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

// listJSON is the platform's UserSecretsListResponse.
type listJSON struct {
	Secrets []secretJSON `json:"secrets"`
	Total   int          `json:"total"`
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

func (h *handler) create(w http.ResponseWriter, r *http.Request, scope string) error {
	o, err := h.Body.Object(w, r)
	if err != nil {
		return err
	}
	o.OmitNull("provider")
	name, value, err := dialect.NameValue(o, "provider")
	if err != nil {
		return err
	}
	in := dialect.Secret(value)
	if in.Description, err = o.StringPtr("provider"); err != nil {
		return err
	}
	v, err := dialect.Create(r.Context(), h.Svc, scope, name, in, func(name string) error {
		return envy.Errorf(envy.EConflict, "a secret named %s already exists", name)
	})
	if err != nil {
		return fromBody(err)
	}
	h.JSON(w, http.StatusCreated, view(v))
	return nil
}

var (
	errInvalidID = envy.Invalid(envy.Field("path.id", "uuid_parsing", "id must be a UUID"))
	errNotFound  = envy.Errorf(envy.ENotFound, "Secret not found")
)
