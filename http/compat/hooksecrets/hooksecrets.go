// Package hooksecrets serves the Auth0 Hook Secrets dialect
// (docs/dialects/hooksecrets.md) over envy's Service: read, add, update and
// delete the secrets of a hook at /api/v2/hooks/{id}/secrets, with the Auth0
// Management API's error envelope, over the scope hooks/{id}.
//
// It is a thin adapter. Every read and write is a call to the same
// *envy.Service that the native API calls, so validation, revisions,
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
	"context"
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
	"github.com/envy-dev/envy/http/wire"
)

// ValueNotShown is what reads show instead of a secret's value, and what a
// write may send back to keep the stored value.
const ValueNotShown = "_VALUE_NOT_SHOWN"

const (
	scopePrefix = "hooks/"
	// writeAttempts bounds the tries of a checked write whose hook changes
	// between the check and the write.
	writeAttempts = 8
)

type handler struct {
	*dialect.API
}

// Register mounts the dialect's routes on api. Request bodies are parsed
// for their shape only; what a name or a value may be is the service's to
// say. Any content type is read as JSON, as the seed's examples send it,
// and the refusals are worded as the native API's.
func Register(api *envyhttp.Server, svc *envy.Service) {
	h := &handler{}
	h.API = dialect.New(api, svc, dialect.Config{
		Name: "hooksecrets", SyntaxFirst: true, Table: errorTable, Envelope: envelope,
		ContentType: wire.ContentTypeJSON, Begin: h.begin,
	})
	h.Handle("/api/v2/hooks/{id}/secrets", func(string) string { return "the route serves GET, POST, PATCH and DELETE" },
		dialect.Routes{"GET": h.list, "POST": h.add, "PATCH": h.update, "DELETE": h.remove})
	h.NotFound("/api/v2/", "Not Found")
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
	return h.checkedWrite(w, r, scope, func(in map[string]string, exists map[string]bool) (map[string]*envy.VarInput, error) {
		var unknown, taken []string
		merge := make(map[string]*envy.VarInput, len(in))
		for _, name := range wire.SortedKeys(in) {
			v := in[name]
			switch {
			case v == ValueNotShown && exists[name]: // keeps the stored value
			case v == ValueNotShown:
				unknown = append(unknown, name)
			case exists[name]:
				taken = append(taken, name)
			default:
				merge[name] = secretInput(v)
			}
		}
		if len(unknown) > 0 {
			return nil, nothingToKeep(unknown)
		}
		if len(taken) > 0 {
			return nil, envy.Errorf(envy.EConflict, "%s", strings.Join(taken, ", "))
		}
		return merge, nil
	})
}

// update sets existing secrets: 404 when one of the names does not exist;
// the placeholder keeps a secret's stored value.
func (h *handler) update(w http.ResponseWriter, r *http.Request, scope string) error {
	return h.checkedWrite(w, r, scope, func(in map[string]string, exists map[string]bool) (map[string]*envy.VarInput, error) {
		var missing []string
		merge := make(map[string]*envy.VarInput, len(in))
		for _, name := range wire.SortedKeys(in) {
			switch v := in[name]; {
			case !exists[name]:
				missing = append(missing, name)
			case v == ValueNotShown: // keeps the stored value
			default:
				merge[name] = secretInput(v)
			}
		}
		if len(missing) > 0 {
			return nil, &envy.Error{Code: codeSecretNotFound, Message: strings.Join(missing, ", ")}
		}
		return merge, nil
	})
}

// checkedWrite reads the secrets of the body, writes what plan makes of
// them and the hook's current names (see checkedMerge), and answers 201.
func (h *handler) checkedWrite(w http.ResponseWriter, r *http.Request, scope string,
	plan func(in map[string]string, exists map[string]bool) (map[string]*envy.VarInput, error)) error {
	in, err := h.readSecrets(w, r)
	if err != nil {
		return err
	}
	rev, err := h.checkedMerge(r.Context(), scope, func(exists map[string]bool) (map[string]*envy.VarInput, error) {
		return plan(in, exists)
	})
	if err != nil {
		return err
	}
	dialect.SetETag(w, rev)
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
		return err
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

// checkedMerge reads the hook's secrets, lets plan check the request
// against them and say what to write, and writes that in one revision on
// the condition that the hook is still at the revision it read. When the
// hook moved on in between, it checks again.
//
// The service has no merge that refuses existing (or missing) names by
// itself, so this If-Match loop is what makes the check and the write
// atomic. It needs read as well as write on the hook.
func (h *handler) checkedMerge(ctx context.Context, scope string, plan func(exists map[string]bool) (map[string]*envy.VarInput, error)) (int64, error) {
	for attempt := 1; ; attempt++ {
		vl, err := h.Svc.ListVars(ctx, scope, false)
		if err != nil {
			return 0, err
		}
		exists := make(map[string]bool, len(vl.Items))
		for _, v := range vl.Items {
			exists[v.Name] = true
		}
		in, err := plan(exists)
		if err != nil {
			return 0, err
		}
		cond := envy.Cond{IfRevision: vl.Revision}
		rev := vl.Revision
		if len(in) == 0 {
			err = h.mayWrite(ctx, scope)
		} else {
			var info envy.WriteInfo
			info, err = h.Svc.MergeVars(ctx, scope, in, envy.SetOptions{Cond: cond, ScopeMustExist: true})
			rev = info.Revision
		}
		if envy.ErrorCode(err) != envy.EPrecondition || attempt == writeAttempts {
			return rev, err
		}
	}
}

// mayWrite checks that the caller may write the hook when a request only
// keeps stored values and so writes nothing; the refusal is audited as the
// service audits one.
func (h *handler) mayWrite(ctx context.Context, scope string) error {
	if h.Svc.Can(ctx, envy.ActWrite, scope) {
		return nil
	}
	h.Svc.Refused(ctx, "vars.merge", scope, http.StatusForbidden)
	return envy.Errorf(envy.EForbidden, "token may not write scope %s", scope)
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
