package http

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/dotenv"
)

// Scopes.

func (s *Server) handleListScopes(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.svc.ListScopes(r.Context(), envy.ScopeListQuery{
		Prefix: q.Get("prefix"),
		Cursor: q.Get("cursor"),
		Limit:  limit,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page, scopeView))
	return nil
}

func (s *Server) handleGetScope(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.svc.GetScope(r.Context(), r.PathValue("path"))
	if err != nil {
		return err
	}
	setETag(w, sc.Revision)
	writeJSON(w, http.StatusOK, scopeGetJSON{scopeJSON: scopeView(sc), VarCount: sc.VarCount})
	return nil
}

func (s *Server) handlePutScope(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var in envy.ScopeInput
	if len(bytes.TrimSpace(body)) > 0 { // an empty body creates the scope as it is
		o, err := parseBody(body)
		if err != nil {
			return err
		}
		if err := o.only("description", "inherits"); err != nil {
			return err
		}
		if in.Description, err = o.strPtr("description"); err != nil {
			return err
		}
		if in.Inherits, err = o.stringList("inherits"); err != nil {
			return err
		}
	}
	sc, wi, err := s.svc.PutScope(r.Context(), r.PathValue("path"), in, c)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if wi.Created {
		status = http.StatusCreated
	}
	setETag(w, wi.Revision)
	writeJSON(w, status, scopeWriteJSON{scopeJSON: scopeView(sc), Revision: wi.Revision, Synced: wi.Synced})
	return nil
}

func (s *Server) handleDeleteScope(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	wi, err := s.svc.DeleteScope(r.Context(), r.PathValue("path"), c)
	if err != nil {
		return err
	}
	setETag(w, wi.Revision)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Vars.

func (s *Server) handleListVars(w http.ResponseWriter, r *http.Request) error {
	reveal, err := queryBool(r, "reveal")
	if err != nil {
		return err
	}
	vl, err := s.svc.ListVars(r.Context(), r.PathValue("path"), reveal)
	if err != nil {
		return err
	}
	setETag(w, vl.Revision)
	writeVarListJSON(w, vl)
	return nil
}

func (s *Server) handleGetVar(w http.ResponseWriter, r *http.Request) error {
	reveal, err := queryBool(r, "reveal")
	if err != nil {
		return err
	}
	v, err := s.svc.GetVar(r.Context(), r.PathValue("path"), r.PathValue("name"), reveal)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, varView(v))
	return nil
}

// varFields are the fields of a var that a write may give.
var varFields = []string{"value", "secret", "description"}

// varInputAt decodes a var write {"value"?, "secret"?, "description"?};
// omitted fields keep their value. The value goes straight into a
// Sensitive.
func varInputAt(o *jsonObject) (envy.VarInput, error) {
	var in envy.VarInput
	v, ok, err := o.str("value")
	if err != nil {
		return in, err
	}
	if ok {
		sv := envy.NewSensitive(v)
		in.Value = &sv
	}
	if in.Secret, err = o.boolPtr("secret"); err != nil {
		return in, err
	}
	if in.Description, err = o.strPtr("description"); err != nil {
		return in, err
	}
	return in, nil
}

// singleVarBody decodes the body of a single-var PUT or PATCH. A "name"
// field is accepted when it equals the name in the URL: names are
// immutable.
func (s *Server) singleVarBody(w http.ResponseWriter, r *http.Request) (envy.VarInput, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return envy.VarInput{}, err
	}
	o, err := parseBody(body)
	if err != nil {
		return envy.VarInput{}, err
	}
	if err := o.only(append([]string{"name"}, varFields...)...); err != nil {
		return envy.VarInput{}, err
	}
	name, ok, err := o.str("name")
	if err != nil {
		return envy.VarInput{}, err
	}
	if ok && name != r.PathValue("name") {
		return envy.VarInput{}, envy.Invalid(envy.Field("body.name", "immutable", "name differs from the name in the URL; names can't be changed"))
	}
	return varInputAt(o)
}

func (s *Server) handlePutVar(w http.ResponseWriter, r *http.Request) error {
	return s.setVar(w, r, envy.Upsert)
}

func (s *Server) handlePatchVar(w http.ResponseWriter, r *http.Request) error {
	return s.setVar(w, r, envy.UpdateOnly)
}

func (s *Server) setVar(w http.ResponseWriter, r *http.Request, mode envy.SetMode) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	in, err := s.singleVarBody(w, r)
	if err != nil {
		return err
	}
	v, wi, err := s.svc.SetVar(r.Context(), r.PathValue("path"), r.PathValue("name"), in, envy.SetOptions{Cond: c, Mode: mode})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if wi.Created {
		status = http.StatusCreated
	}
	setETag(w, wi.Revision)
	writeJSON(w, status, varWriteJSON{varJSON: varView(v), Revision: wi.Revision, Synced: wi.Synced})
	return nil
}

// bulkBody decodes a bulk body {"A":"v","B":null,"C":{"value":"v",...}}
// into var inputs by name; null is a nil input (a delete), refused unless
// allowNull.
func (s *Server) bulkBody(w http.ResponseWriter, r *http.Request, allowNull bool) (map[string]*envy.VarInput, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	o, err := parseBody(body)
	if err != nil {
		return nil, err
	}
	in := make(map[string]*envy.VarInput, len(o.members))
	for _, name := range o.order {
		raw := o.members[name]
		loc := "body." + name
		switch jsonKind(raw) {
		case 'n':
			if !allowNull {
				return nil, typeError(loc, "a string or an object (a replace has no deletes)")
			}
			in[name] = nil
		case '"':
			v, err := stringAt(loc, raw)
			if err != nil {
				return nil, err
			}
			sv := envy.NewSensitive(v)
			in[name] = &envy.VarInput{Value: &sv}
		case '{':
			vo, err := objectAt(loc, raw)
			if err != nil {
				return nil, err
			}
			if err := vo.only(varFields...); err != nil {
				return nil, err
			}
			vi, err := varInputAt(vo)
			if err != nil {
				return nil, err
			}
			in[name] = &vi
		default:
			return nil, typeError(loc, "a string, an object or null")
		}
	}
	return in, nil
}

func (s *Server) handleMergeVars(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	in, err := s.bulkBody(w, r, true)
	if err != nil {
		return err
	}
	wi, err := s.svc.MergeVars(r.Context(), r.PathValue("path"), in, envy.SetOptions{Cond: c})
	if err != nil {
		return err
	}
	setETag(w, wi.Revision)
	writeJSON(w, http.StatusOK, writeInfoView(wi))
	return nil
}

func (s *Server) handleReplaceVars(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	bulk, err := s.bulkBody(w, r, false)
	if err != nil {
		return err
	}
	in := make(map[string]envy.VarInput, len(bulk))
	for k, v := range bulk {
		in[k] = *v
	}
	wi, err := s.svc.ReplaceVars(r.Context(), r.PathValue("path"), in, c)
	if err != nil {
		return err
	}
	setETag(w, wi.Revision)
	writeJSON(w, http.StatusOK, writeInfoView(wi))
	return nil
}

func (s *Server) handleDeleteVar(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	wi, err := s.svc.DeleteVar(r.Context(), r.PathValue("path"), r.PathValue("name"), c)
	if err != nil {
		return err
	}
	setETag(w, wi.Revision)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// The resolved env.

func (s *Server) handleEnv(w http.ResponseWriter, r *http.Request) error {
	format, err := queryEnum(r, "format", "json", "dotenv", "shell")
	if err != nil {
		return err
	}
	env, err := s.svc.Env(r.Context(), r.PathValue("path"))
	if err != nil {
		return err
	}
	setETag(w, env.Revision)
	if format == "json" {
		writeEnvJSON(w, env)
		return nil
	}
	kvs := make([]dotenv.KV, 0, len(env.Vars))
	for _, v := range env.Vars {
		kvs = append(kvs, dotenv.KV{Name: v.Name, Value: v.Value.Reveal()})
	}
	var buf bytes.Buffer
	if err := dotenv.WriteFormat(&buf, dotenv.Format(format), kvs); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// History and rollback.

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	before, err := queryInt(r, "before")
	if err != nil {
		return err
	}
	reveal, err := queryBool(r, "reveal")
	if err != nil {
		return err
	}
	page, err := s.svc.History(r.Context(), r.PathValue("path"), envy.HistoryQuery{Before: before, Cursor: r.URL.Query().Get("cursor"), Limit: limit, Reveal: reveal})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page, changeView))
	return nil
}

func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	o, err := parseBody(body)
	if err != nil {
		return err
	}
	if err := o.only("revision"); err != nil {
		return err
	}
	rev, ok, err := o.integer("revision")
	if err != nil {
		return err
	}
	if !ok {
		return envy.Invalid(envy.Field("body.revision", "missing", "revision is required"))
	}
	wi, err := s.svc.Rollback(r.Context(), r.PathValue("path"), rev, c)
	if err != nil {
		return err
	}
	setETag(w, wi.Revision)
	writeJSON(w, http.StatusOK, writeInfoView(wi))
	return nil
}
