// Package hooksecrets serves the Auth0 Hook Secrets dialect
// (docs/dialects/hooksecrets.md) over envy's Service: read, add, update and
// delete the secrets of a hook at /api/v2/hooks/{id}/secrets, with the Auth0
// Management API's error envelope, over the scope hooks/{id}; the hooks
// themselves at /api/v2/hooks (hooks.go); and Auth0's client-credentials
// sign-in at /oauth/token (signin.go).
//
// It is a thin adapter. Every read and write is a call to the same
// *service.Service that the native API calls, so validation, revisions,
// history, audit, watch events, permissions and rate limits are the native
// ones. Secrets are stored with secret=true, reads never show a value
// (every one reads as _VALUE_NOT_SHOWN), and, on purpose unlike the seed,
// writing _VALUE_NOT_SHOWN back leaves the stored value as it is instead of
// overwriting it. Add and update check the hook's current secrets and write
// with If-Match on the revision they checked, so "409 when a name exists"
// and "404 when it does not" hold atomically and a request is all or
// nothing, in one revision. Errors are mapped from the domain's codes in
// one table (errors.go).
//
// It imports the domain and envy's http package, never a storage or crypto
// package, and never another dialect.
package hooksecrets

import (
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// ValueNotShown is what reads show instead of a secret's value, and what a
// write may send back to keep the stored value.
const ValueNotShown = "_VALUE_NOT_SHOWN"

const scopePrefix = "hooks/"

type handler struct {
	*dialect.API
}

// Register mounts the dialect's routes on api. Request bodies are parsed
// for their shape only; what a name or a value may be is the service's to
// say. Any content type is read as JSON, as the seed's examples send it,
// and the refusals are worded as the native API's.
func Register(api *envyhttp.Server, svc *service.Service) {
	h := &handler{}
	h.API = dialect.New(api, svc, dialect.Config{
		Name: "hooksecrets", WriteAudit: envy.AuditHooksecretsWrite, SyntaxFirst: true, Table: errorTable, Envelope: envelope,
		ContentType: wire.ContentTypeJSON, Begin: h.begin,
	})
	h.Handle("/api/v2/hooks/{id}/secrets", func(string) string { return "the route serves GET, POST, PATCH and DELETE" },
		dialect.Routes{"GET": h.list, "POST": h.add, "PATCH": h.update, "DELETE": h.remove})
	coll := *h.API
	coll.Begin = h.beginHooks
	coll.Handle("/api/v2/hooks", func(string) string { return "the route serves GET and POST" },
		dialect.Routes{"GET": h.listHooks, "POST": h.createHook})
	h.Handle("/api/v2/hooks/{id}", func(string) string { return "the route serves GET, PATCH and DELETE" },
		dialect.Routes{"GET": h.getHook, "PATCH": h.updateHook, "DELETE": h.deleteHook})
	h.NotFound("/api/v2/", "Not Found")
	api.Handle("POST /oauth/token", http.HandlerFunc(h.signIn))
}

// begin authenticates the request (a bearer token) and finds the hook's
// scope.
func (h *handler) begin(r *http.Request) (*http.Request, string, error) {
	token, _ := envyhttp.BearerToken(r)
	ar, err := h.Authenticate(r, token, codeMissingToken, "")
	if err != nil {
		return r, "", err
	}
	// No hook can have an id that is not a scope segment: answer as for
	// one that doesn't exist.
	scope, err := dialect.IDScope(scopePrefix, ar.PathValue("id"), envy.Errorf(envy.ENotFound, "hook not found"))
	return ar, scope, err
}

// list answers every secret of the hook with the placeholder for a value.
func (h *handler) list(w http.ResponseWriter, r *http.Request, scope string) error {
	vl, err := h.Svc.ListVars(r.Context(), scope, false)
	if err != nil {
		return err
	}
	out := make(map[string]string, len(vl.Items))
	for _, v := range vl.Items {
		out[v.Name] = ValueNotShown
	}
	dialect.SetETag(w, vl.Revision)
	h.JSON(w, http.StatusOK, out)
	return nil
}

// add adds secrets: 409 when one of the names exists, unless its value is
// the placeholder, which keeps it; 400 for the placeholder of a name that
// does not exist, as there is no value to keep.
func (h *handler) add(w http.ResponseWriter, r *http.Request, scope string) error {
	return h.checkedWrite(w, r, scope, func(in map[string]string, exists func(string) bool) error {
		var unknown, taken []string
		for _, name := range wire.SortedKeys(in) {
			switch keep := in[name] == ValueNotShown; {
			case keep && !exists(name):
				unknown = append(unknown, name)
			case !keep && exists(name):
				taken = append(taken, name)
			}
		}
		if len(unknown) > 0 {
			return nothingToKeep(unknown)
		}
		if len(taken) > 0 {
			return envy.Errorf(envy.EConflict, "%s", strings.Join(taken, ", "))
		}
		return nil
	})
}

// update sets existing secrets: 404 when one of the names does not exist;
// the placeholder keeps a secret's stored value.
func (h *handler) update(w http.ResponseWriter, r *http.Request, scope string) error {
	return h.checkedWrite(w, r, scope, func(in map[string]string, exists func(string) bool) error {
		var missing []string
		for _, name := range wire.SortedKeys(in) {
			if !exists(name) {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return &envy.Error{Code: codeSecretNotFound, Message: strings.Join(missing, ", ")}
		}
		return nil
	})
}

// checkedWrite reads the secrets of the body and writes them in one
// revision, the placeholder keeping a stored value, once check accepts
// them against the hook's current names; the service runs the check on the
// names it plans the write from, so the two are one atomic step (see
// service.Service.MergeVarsIf). It answers 201.
func (h *handler) checkedWrite(w http.ResponseWriter, r *http.Request, scope string,
	check func(in map[string]string, exists func(string) bool) error) error {
	in, err := h.readSecrets(w, r)
	if err != nil {
		return err
	}
	merge := make(map[string]*envy.VarInput, len(in))
	for name, v := range in {
		merge[name] = &envy.VarInput{} // keeps it
		if v != ValueNotShown {
			merge[name] = secretInput(v)
		}
	}
	info, err := h.Svc.MergeVarsIf(r.Context(), scope, merge, envy.SetOptions{ScopeMustExist: true}, func(exists func(string) bool) error {
		return check(in, exists)
	})
	if err != nil {
		return concurrent(err)
	}
	dialect.SetETag(w, info.Revision)
	h.JSON(w, http.StatusCreated, struct{}{})
	return nil
}

// remove deletes the secrets named by a JSON array, in one revision;
// names that don't exist are no error.
func (h *handler) remove(w http.ResponseWriter, r *http.Request, scope string) error {
	raw, err := h.Body.Value(w, r)
	if err != nil {
		return err
	}
	if wire.Kind(raw) != '[' {
		return envy.Invalid(envy.Field("body", "type_error", "the body must be an array of secret names"))
	}
	names, err := h.Body.Words.StringList("body", raw)
	if err != nil {
		return err
	}
	in := make(map[string]*envy.VarInput, len(names))
	for _, n := range names {
		in[n] = nil // nil deletes
	}
	info, err := h.Svc.MergeVars(r.Context(), scope, in, envy.SetOptions{ScopeMustExist: true})
	if err != nil {
		return concurrent(err)
	}
	dialect.SetETag(w, info.Revision)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readSecrets reads an object of secret names and string values whose names
// the domain accepts.
func (h *handler) readSecrets(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	raw, err := h.Body.Value(w, r)
	if err != nil {
		return nil, err
	}
	if wire.Kind(raw) != '{' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "the body must be an object of secret names and values"))
	}
	o, err := h.Body.Words.ObjectAt("body", raw)
	if err != nil {
		return nil, err
	}
	in := make(map[string]string, len(o.Members))
	for _, k := range o.Order {
		if in[k], _, err = o.String(k); err != nil {
			return nil, err
		}
	}
	if n := len(in); n < 1 || n > envy.MaxBulkKeys {
		return nil, envy.Invalid(envy.Field("body", "key_count", "the body must hold 1 to %d secrets, not %d", envy.MaxBulkKeys, n))
	}
	var fields []envy.FieldError
	for _, name := range wire.SortedKeys(in) {
		if f := envy.ValidateName("body."+name, name, h.Svc.ReservedPrefixes()); f != nil {
			fields = append(fields, *f)
		}
	}
	if len(fields) > 0 {
		return nil, envy.Invalid(fields...)
	}
	return in, nil
}

func secretInput(v string) *envy.VarInput {
	s, secret := envy.NewSensitive(v), true
	return &envy.VarInput{Value: &s, Secret: &secret}
}

// nothingToKeep refuses the placeholder for secrets that don't exist.
func nothingToKeep(names []string) error {
	fields := make([]envy.FieldError, len(names))
	for i, n := range names {
		fields[i] = envy.Field("body."+n, "value_not_shown",
			"%s keeps a stored value, and the hook has no secret %s to keep", ValueNotShown, n)
	}
	return envy.Invalid(fields...)
}
