package hooksecrets

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
)

// Auth0's hooks themselves, around their secrets: create, list, get,
// update and delete at /api/v2/hooks and /api/v2/hooks/{id}. A hook is the
// scope hooks/{id}; its name, script, triggerId and enabled are kept in the
// scope's description as JSON (hookMeta), so that they round-trip through
// envy's own scope API and need nothing new in the store. A description is
// at most envy.MaxDescription characters, which bounds a hook's script.

// hookMeta is what a hook's scope description holds.
type hookMeta struct {
	Hook struct {
		Name      string `json:"name"`
		Script    string `json:"script"`
		TriggerID string `json:"triggerId"`
		Enabled   bool   `json:"enabled"`
	} `json:"auth0_hook"`
}

// hookJSON is Auth0's hook.
type hookJSON struct {
	TriggerID    string            `json:"triggerId"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Enabled      bool              `json:"enabled"`
	Script       string            `json:"script"`
	Dependencies map[string]string `json:"dependencies"`
}

// Codes of the hooks routes.
const (
	codeHookExists   envy.Code = "hooksecrets.hook_exists"
	codeHookTooLarge envy.Code = "hooksecrets.hook_too_large"
)

// triggers are the trigger ids Auth0's hooks accept.
var triggers = map[string]bool{"credentials-exchange": true, "pre-user-registration": true,
	"post-user-registration": true, "post-change-password": true, "send-phone-message": true}

// hookName is Auth0's pattern of a hook's name.
var hookName = regexp.MustCompile(`^[a-zA-Z0-9]([ a-zA-Z0-9-]{0,126}[a-zA-Z0-9])?$`)

// newHookID is an id in Auth0's form: a ULID (26 characters of Crockford's
// base32: 48 bits of milliseconds, then 80 random bits).
func newHookID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var n [2]uint64
	n[0], n[1] = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	out := make([]byte, 26)
	for i := 25; i >= 0; i-- { // 130 bits, the top two zero
		out[i] = alphabet[n[1]&31]
		n[1] = n[1]>>5 | n[0]<<59
		n[0] >>= 5
	}
	return string(out)
}

// hookView is the hook of a scope; a scope made through the native API,
// whose description is no hookMeta, is a disabled hook named by its id.
func hookView(sc envy.Scope) hookJSON {
	id := strings.TrimPrefix(sc.Path, scopePrefix)
	h := hookJSON{ID: id, Name: id, Dependencies: map[string]string{}}
	var m hookMeta
	if json.Unmarshal([]byte(sc.Description), &m) == nil && m.Hook.Name != "" {
		h.Name, h.Script, h.TriggerID, h.Enabled = m.Hook.Name, m.Hook.Script, m.Hook.TriggerID, m.Hook.Enabled
	}
	return h
}

func (h hookJSON) description() (string, error) {
	var m hookMeta
	m.Hook.Name, m.Hook.Script, m.Hook.TriggerID, m.Hook.Enabled = h.Name, h.Script, h.TriggerID, h.Enabled
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if n := len([]rune(string(b))); n > envy.MaxDescription {
		return "", &envy.Error{Code: codeHookTooLarge, Message: "the hook's name, script and triggerId take " + strconv.Itoa(n) +
			" characters as envy keeps them; envy keeps at most " + strconv.Itoa(envy.MaxDescription)}
	}
	return string(b), nil
}

// beginHooks authenticates a request to /api/v2/hooks; a create's scope is
// that of the hook it will create, under a new id, so that the write check
// is on it.
func (h *handler) beginHooks(r *http.Request) (*http.Request, string, error) {
	token, _ := envyhttp.BearerToken(r)
	ar, err := h.Authenticate(r, token, codeMissingToken, "")
	if err != nil {
		return r, "", err
	}
	if r.Method == http.MethodPost {
		return ar, scopePrefix + newHookID(time.Now()), nil
	}
	return ar, strings.TrimSuffix(scopePrefix, "/"), nil
}

// hooks returns every hook the caller may read, by id.
func (h *handler) hooks(r *http.Request) ([]hookJSON, error) {
	var out []hookJSON
	cursor := ""
	for {
		page, err := h.Svc.ListScopes(r.Context(), envy.ScopeListQuery{Prefix: scopePrefix, Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, sc := range page.Items {
			if id := strings.TrimPrefix(sc.Path, scopePrefix); id != sc.Path && envy.ValidSegment(id) {
				out = append(out, hookView(sc))
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// listHooks answers GET /api/v2/hooks, paged as Auth0 pages: page (from
// 0), per_page (1 to 100, default 50 when page is given, else all) and
// include_totals ({hooks,start,limit,total}); filtered by enabled and
// triggerId.
func (h *handler) listHooks(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	all, err := h.hooks(r)
	if err != nil {
		return err
	}
	var hooks []hookJSON
	for _, hk := range all {
		if e := q.Get("enabled"); e != "" && strconv.FormatBool(hk.Enabled) != e {
			continue
		}
		if tr := q.Get("triggerId"); tr != "" && hk.TriggerID != tr {
			continue
		}
		hooks = append(hooks, hk)
	}
	if hooks == nil {
		hooks = []hookJSON{}
	}
	start, limit := 0, len(hooks)
	if q.Has("page") || q.Has("per_page") {
		p, ok := wire.Int(q.Get("page"), 0, 0, 1<<20)
		pp, ok2 := wire.Int(q.Get("per_page"), 50, 1, 100)
		if !ok || !ok2 {
			return envy.Invalid(envy.Field("query", "invalid_paging", "page must be an integer of at least 0 and per_page one from 1 to 100"))
		}
		start, limit = int(p*pp), int(pp)
	}
	page := hooks[min(start, len(hooks)):min(len(hooks), start+limit)]
	if q.Get("include_totals") == "true" {
		h.JSON(w, http.StatusOK, struct {
			Hooks []hookJSON `json:"hooks"`
			Start int        `json:"start"`
			Limit int        `json:"limit"`
			Total int        `json:"total"`
		}{page, start, limit, len(hooks)})
		return nil
	}
	h.JSON(w, http.StatusOK, page)
	return nil
}

// readHook reads a create's or an update's body; a create needs name,
// script and triggerId.
func (h *handler) readHook(w http.ResponseWriter, r *http.Request, into *hookJSON, create bool) error {
	raw, err := h.Body.Value(w, r)
	if err != nil {
		return err
	}
	if wire.Kind(raw) != '{' {
		return envy.Invalid(envy.Field("body", "type_error", "the body must be an object"))
	}
	o, err := h.Body.Words.ObjectAt("body", raw)
	if err != nil {
		return err
	}
	allowed := []string{"name", "script", "enabled", "dependencies"}
	if create {
		allowed = append(allowed, "triggerId")
	}
	if err := o.Only(allowed...); err != nil {
		return err
	}
	for name, p := range map[string]*string{"name": &into.Name, "script": &into.Script, "triggerId": &into.TriggerID} {
		v, ok, err := o.String(name)
		if err != nil {
			return err
		}
		if ok {
			*p = v
		} else if create {
			return envy.Invalid(envy.Field("body."+name, "missing", "Missing required property: %s", name))
		}
	}
	if b, err := o.Bool("enabled"); err != nil {
		return err
	} else if b != nil {
		into.Enabled = *b
	}
	if !hookName.MatchString(into.Name) {
		return envy.Invalid(envy.Field("body.name", "invalid_name", "String does not match pattern ^[a-zA-Z0-9]([ a-zA-Z0-9-]{0,126}[a-zA-Z0-9])?$"))
	}
	if create && !triggers[into.TriggerID] {
		return envy.Invalid(envy.Field("body.triggerId", "invalid_trigger", "No enum match for: %s", strconv.Quote(into.TriggerID)))
	}
	return nil
}

// nameTaken refuses a name another hook has (checked against the list,
// not atomically: two creates at once may both pass).
func (h *handler) nameTaken(r *http.Request, name, id string) error {
	all, err := h.hooks(r)
	if err != nil {
		return err
	}
	for _, hk := range all {
		if hk.Name == name && hk.ID != id {
			return &envy.Error{Code: codeHookExists, Message: "Hook with name " + name + " already exists"}
		}
	}
	return nil
}

// createHook answers POST /api/v2/hooks: 201 and the hook.
func (h *handler) createHook(w http.ResponseWriter, r *http.Request, scope string) error {
	hk := hookJSON{ID: strings.TrimPrefix(scope, scopePrefix), Dependencies: map[string]string{}}
	if err := h.readHook(w, r, &hk, true); err != nil {
		return err
	}
	if err := h.nameTaken(r, hk.Name, hk.ID); err != nil {
		return err
	}
	d, err := hk.description()
	if err != nil {
		return err
	}
	if _, _, err := h.Svc.PutScope(r.Context(), scope, envy.ScopeInput{Description: &d}, envy.Cond{}); err != nil {
		return err
	}
	h.JSON(w, http.StatusCreated, hk)
	return nil
}

// getHook answers GET /api/v2/hooks/{id}.
func (h *handler) getHook(w http.ResponseWriter, r *http.Request, scope string) error {
	sc, err := h.Svc.GetScope(r.Context(), scope)
	if err != nil {
		return err
	}
	h.JSON(w, http.StatusOK, hookView(sc))
	return nil
}

// updateHook answers PATCH /api/v2/hooks/{id}: name, script, enabled; the
// write is conditional on the revision read, so a concurrent update is
// never lost (409 concurrent_update).
func (h *handler) updateHook(w http.ResponseWriter, r *http.Request, scope string) error {
	sc, err := h.Svc.GetScope(r.Context(), scope)
	if err != nil {
		return err
	}
	hk := hookView(sc)
	old := hk.Name
	if err := h.readHook(w, r, &hk, false); err != nil {
		return err
	}
	if hk.Name != old {
		if err := h.nameTaken(r, hk.Name, hk.ID); err != nil {
			return err
		}
	}
	d, err := hk.description()
	if err != nil {
		return err
	}
	if _, _, err := h.Svc.PutScope(r.Context(), scope, envy.ScopeInput{Description: &d}, envy.Cond{IfRevision: sc.Revision}); err != nil {
		if envy.ErrorCode(err) == envy.EPrecondition {
			return &envy.Error{Code: codeConcurrentUpdate}
		}
		return err
	}
	h.JSON(w, http.StatusOK, hk)
	return nil
}

// deleteHook answers DELETE /api/v2/hooks/{id}: the hook goes with its
// secrets; 404 when there is none.
func (h *handler) deleteHook(w http.ResponseWriter, r *http.Request, scope string) error {
	if _, err := h.Svc.GetScope(r.Context(), scope); err != nil {
		return err
	}
	if _, err := h.Svc.DeleteScope(r.Context(), scope, envy.Cond{}); err != nil {
		if errors.Is(err, envy.ErrStale) {
			return &envy.Error{Code: codeConcurrentUpdate}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
