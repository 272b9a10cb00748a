// Package containers serves the container environment variables dialect
// (docs/dialects/containers.md) over envy's Service: list, merge, set and
// delete the variables of a container at /api/v1/containers/{id}/env, in
// that platform's envelope {"statusCode","message","data"}, over the scope
// containers/{id}.
//
// It is a thin adapter. Every read and write is a call to the same
// *service.Service that the native API calls, so validation, revisions,
// history, audit, watch events, permissions and rate limits are the native
// ones; `synced` is the service's real answer (every live consumer runs the
// revision). The dialect adds only what its seed adds: the reserved HOODY_
// prefix, the 1–200 key bound of a merge, the rule that a container must
// already exist (containers are created through the native API), and its
// error codes, mapped from the domain's in one table (errors.go).
//
// It imports the domain and envy's http package, never a storage or crypto
// package, and never another dialect.
package containers

import (
	"net/http"
	"slices"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

const (
	// ReservedPrefix is the seed's own reserved key prefix, refused on top
	// of envy's reserved prefixes.
	ReservedPrefix = "HOODY_"
	// MaxMergeKeys is the seed's bound on the keys of one merge.
	MaxMergeKeys = 200

	scopePrefix = "containers/"
)

// The seed's success messages.
const (
	msgRetrieved  = "Environment variables retrieved"
	msgMerged     = "Environment variables updated"
	msgSetOne     = "Environment variable updated"
	msgDeletedOne = "Environment variable deleted"
)

type handler struct {
	*dialect.API
	reserved []string // envy's reserved prefixes and the seed's
}

// Register mounts the dialect's routes on api. Request bodies are parsed
// for their shape only; what a key or a value may be is the service's to
// say, plus the seed's own limits here. Any content type is read as JSON,
// as the seed's clients send it, and the refusals are worded as the native
// API's.
func Register(api *envyhttp.Server, svc *service.Service) {
	h := &handler{reserved: append(slices.Clone(svc.ReservedPrefixes()), ReservedPrefix)}
	h.API = dialect.New(api, svc, dialect.Config{
		Name: "containers", WriteAudit: envy.AuditContainersWrite, Words: words, SyntaxFirst: true, Table: errorTable, Envelope: envelope,
		ContentType: wire.ContentTypeJSON, Begin: h.begin,
	})
	serves := func(allow string) string { return "the route serves " + allow }
	h.Handle("/api/v1/containers/{id}/env", serves, dialect.Routes{"GET": h.list, "PATCH": h.merge})
	h.Handle("/api/v1/containers/{id}/env/{key}", serves, dialect.Routes{"PUT": h.set, "DELETE": h.remove})
	h.NotFound("/api/v1/containers/", "no such route: the dialect serves /api/v1/containers/{id}/env and /env/{key}")
}

// words name the first unknown member of a {"value"} body and say what the
// body should be; the rest are the native API's.
var words = wire.Words{
	Unknown: func(loc string, names []string) error {
		return envy.Invalid(envy.Field(loc+"."+names[0], "unknown_field", "unknown field; the body is {\"value\": \"…\"}"))
	},
}

// replyJSON is the seed's success envelope.
type replyJSON struct {
	StatusCode int      `json:"statusCode"`
	Message    string   `json:"message"`
	Data       dataJSON `json:"data"`
}

type dataJSON struct {
	EnvironmentVars map[string]string `json:"environment_vars"`
	Synced          bool              `json:"synced"`
}

// begin authenticates the request as the seed says (a bearer token) and
// finds the container's scope.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	token, _ := envyhttp.BearerToken(r)
	ar, err := h.Authenticate(r, token, "", codeInvalidToken)
	if err != nil {
		return r, "", err
	}
	// No container can have an id that is not a scope segment: answer as
	// for one that doesn't exist.
	scope, err := dialect.IDScope(scopePrefix, ar.PathValue("id"), envy.Errorf(envy.ENotFound, "container not found"))
	return ar, scope, err
}

// list answers the container's own variables; secrets show their
// masked_value unless the caller asks ?reveal=true and may reveal.
func (h *handler) list(w http.ResponseWriter, r *http.Request, scope string) error {
	ctx := r.Context()
	vl, err := h.Svc.ListVars(ctx, scope, r.URL.Query().Get("reveal") == "true")
	if err != nil {
		return err
	}
	st, err := h.Svc.Status(ctx, scope)
	if err != nil {
		return err
	}
	reply(w, vl.Revision, msgRetrieved, envOf(vl.Items), st.Synced)
	return nil
}

// merge sets 1–200 variables in one revision. Values are strings, as the
// seed says; deleting is DELETE /env/{key}'s job.
func (h *handler) merge(w http.ResponseWriter, r *http.Request, scope string) error {
	body, err := h.Body.Object(w, r)
	if err != nil {
		return err
	}
	if n := len(body.Members); n < 1 || n > MaxMergeKeys {
		return envy.Invalid(envy.Field("body", "key_count", "the body must hold 1 to %d keys, not %d", MaxMergeKeys, n))
	}
	keys := wire.SortedKeys(body.Members)
	in := make(map[string]*envy.VarInput, len(keys))
	env := make(map[string]string, len(keys))
	for _, k := range keys {
		if err := h.checkKey("body."+k, k); err != nil {
			return err
		}
		v, _, err := body.String(k)
		if err != nil {
			return err
		}
		s := envy.NewSensitive(v)
		in[k] = &envy.VarInput{Value: &s}
		env[k] = v
	}
	info, err := h.Svc.MergeVars(r.Context(), scope, in, envy.SetOptions{ScopeMustExist: true})
	if err != nil {
		return err
	}
	// The merge is all or nothing, so what was sent is what is stored.
	reply(w, info.Revision, msgMerged, env, info.Synced)
	return nil
}

// set creates or updates one variable from {"value": "…"}.
func (h *handler) set(w http.ResponseWriter, r *http.Request, scope string) error {
	key := r.PathValue("key")
	if err := h.checkKey("path.key", key); err != nil {
		return err
	}
	body, err := h.Body.Object(w, r)
	if err != nil {
		return err
	}
	if err := body.Only("value"); err != nil {
		return err
	}
	v, err := body.RequiredString("value")
	if err != nil {
		return err
	}
	s := envy.NewSensitive(v)
	_, info, err := h.Svc.SetVar(r.Context(), scope, key, envy.VarInput{Value: &s}, envy.SetOptions{ScopeMustExist: true})
	if err != nil {
		return err
	}
	reply(w, info.Revision, msgSetOne, map[string]string{key: v}, info.Synced)
	return nil
}

// remove deletes one variable, whether or not it existed, and answers the
// variables that remain.
func (h *handler) remove(w http.ResponseWriter, r *http.Request, scope string) error {
	key := r.PathValue("key")
	if err := h.checkKey("path.key", key); err != nil {
		return err
	}
	ctx := r.Context()
	info, err := h.Svc.DeleteVar(ctx, scope, key, envy.Cond{})
	if err != nil {
		return err
	}
	// DeleteVar succeeds on a missing scope, with no revision; a scope
	// that exists has one.
	if info.Revision == 0 {
		return envy.Errorf(envy.ENotFound, "container not found")
	}
	// The delete happened: the reply says so in the seed's shape, listing
	// what remains only to a caller who may read it (a write-only token
	// gets an empty list, never a refusal of what it just did).
	env := map[string]string{}
	if h.Svc.Can(ctx, envy.ActRead, scope) {
		vl, err := h.Svc.ListVars(ctx, scope, false)
		if err != nil {
			return err
		}
		env = envOf(vl.Items)
	}
	reply(w, info.Revision, msgDeletedOne, env, info.Synced)
	return nil
}

// checkKey applies the domain's name rules with the seed's reserved prefix
// added, and names the failure with the seed's two key error codes.
func (h *handler) checkKey(loc, key string) error {
	f := envy.ValidateName(loc, key, h.reserved)
	if f == nil {
		return nil
	}
	code := codeInvalidKey
	if f.Type == "reserved_prefix" {
		code = codeReservedPrefix
	}
	return &envy.Error{Code: code, Message: f.Loc + ": " + f.Msg, Fields: []envy.FieldError{*f}}
}

// envOf turns vars into the seed's environment_vars map; a secret read
// without reveal shows its masked_value.
func envOf(items []envy.VarView) map[string]string {
	env := make(map[string]string, len(items))
	for _, v := range items {
		switch {
		case v.Value != nil:
			env[v.Name] = v.Value.Reveal()
		case v.MaskedValue != nil:
			env[v.Name] = *v.MaskedValue
		}
	}
	return env
}

func reply(w http.ResponseWriter, revision int64, message string, env map[string]string, synced bool) {
	dialect.SetETag(w, revision)
	wire.WriteJSON(w, wire.ContentTypeJSON, http.StatusOK, replyJSON{
		StatusCode: http.StatusOK,
		Message:    message,
		Data:       dataJSON{EnvironmentVars: env, Synced: synced},
	})
}
