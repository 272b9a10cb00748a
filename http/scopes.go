package http

import (
	"bytes"
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/dotenv"
	"github.com/envy-dev/envy/http/wire"
)

// Replies shared by the handlers.

// writeList answers a page of items, each shown with view.
func writeList[T, V any](w http.ResponseWriter, p envy.Page[T], err error, view func(T) V) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(p, view))
	return nil
}

// writeRead answers a scope-level read, its ETag the scope's revision.
func writeRead(w http.ResponseWriter, revision int64, v any, err error) error {
	if err != nil {
		return err
	}
	wire.SetETag(w, revision)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// writeWrite answers a write: 201 when it created what it wrote, the new
// revision as ETag.
func writeWrite(w http.ResponseWriter, wi envy.WriteInfo, v any) {
	status := http.StatusOK
	if wi.Created {
		status = http.StatusCreated
	}
	wire.SetETag(w, wi.Revision)
	writeJSON(w, status, v)
}

// writeDeleted answers a delete: 204, the new revision as ETag.
func writeDeleted(w http.ResponseWriter, wi envy.WriteInfo, err error) error {
	if err != nil {
		return err
	}
	wire.SetETag(w, wi.Revision)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

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
	return writeList(w, page, err, scopeView)
}

func (s *Server) handleGetScope(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.svc.GetScope(r.Context(), r.PathValue("path"))
	return writeRead(w, sc.Revision, scopeGetView(sc), err)
}

func (s *Server) handlePutScope(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	body, err := s.body.Bytes(w, r)
	if err != nil {
		return err
	}
	var in envy.ScopeInput
	if len(bytes.TrimSpace(body)) > 0 { // an empty body creates the scope as it is
		raw, err := s.body.Parse(body)
		if err != nil {
			return err
		}
		o, err := nativeWords.ObjectAt("body", raw)
		if err != nil {
			return err
		}
		if err := o.Only("description", "inherits", "rollout"); err != nil {
			return err
		}
		if err := rolloutInput(o, &in); err != nil {
			return err
		}
		if in.Description, err = o.StringPtr("description"); err != nil {
			return err
		}
		if in.Inherits, err = o.StringList("inherits"); err != nil {
			return err
		}
	}
	sc, wi, err := s.svc.PutScope(r.Context(), r.PathValue("path"), in, c)
	if err != nil {
		return err
	}
	writeWrite(w, wi, scopeWriteJSON{scopeJSON: scopeView(sc), Revision: wi.Revision, Synced: wi.Synced, Behind: behindView(wi.Behind)})
	return nil
}

func (s *Server) handleDeleteScope(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	wi, err := s.svc.DeleteScope(r.Context(), r.PathValue("path"), c)
	return writeDeleted(w, wi, err)
}

// Vars.

func (s *Server) handleListVars(w http.ResponseWriter, r *http.Request) error {
	reveal, err := queryBool(r, "reveal")
	if err != nil {
		return err
	}
	if !reveal {
		return writeReply(w, wire.ContentTypeJSON, func(b []byte) (envy.EncodedReply, error) {
			return s.svc.VarListReply(r.Context(), r.PathValue("path"), "json", b, func(b []byte, vl envy.VarList) ([]byte, error) {
				return appendVarListJSON(b, vl), nil
			})
		})
	}
	vl, err := s.svc.ListVars(r.Context(), r.PathValue("path"), reveal)
	if err != nil {
		return err
	}
	wire.SetETag(w, vl.Revision)
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
func varInputAt(o *wire.Object) (envy.VarInput, error) {
	var in envy.VarInput
	v, ok, err := o.String("value")
	if err != nil {
		return in, err
	}
	if ok {
		sv := envy.NewSensitive(v)
		in.Value = &sv
	}
	if in.Secret, err = o.Bool("secret"); err != nil {
		return in, err
	}
	if in.Description, err = o.StringPtr("description"); err != nil {
		return in, err
	}
	return in, nil
}

// singleVarBody decodes the body of a single-var PUT or PATCH. A "name"
// field is accepted when it equals the name in the URL: names are
// immutable.
func (s *Server) singleVarBody(w http.ResponseWriter, r *http.Request) (envy.VarInput, error) {
	o, err := s.body.Object(w, r)
	if err != nil {
		return envy.VarInput{}, err
	}
	if err := o.Only(append([]string{"name"}, varFields...)...); err != nil {
		return envy.VarInput{}, err
	}
	name, ok, err := o.String("name")
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
	writeWrite(w, wi, varWriteJSON{varJSON: varView(v), Revision: wi.Revision, Synced: wi.Synced, Behind: behindView(wi.Behind)})
	return nil
}

// bulkBody decodes a bulk body {"A":"v","B":null,"C":{"value":"v",...}}
// into var inputs by name; null is a nil input (a delete), refused unless
// allowNull.
func (s *Server) bulkBody(w http.ResponseWriter, r *http.Request, allowNull bool) (map[string]*envy.VarInput, error) {
	o, err := s.body.Object(w, r)
	if err != nil {
		return nil, err
	}
	in := make(map[string]*envy.VarInput, len(o.Members))
	for _, name := range o.Order {
		raw := o.Members[name]
		loc := "body." + name
		switch wire.Kind(raw) {
		case 'n':
			if !allowNull {
				return nil, wire.TypeError(loc, "string or an object (a replace has no deletes)")
			}
			in[name] = nil
		case '"':
			v, err := nativeWords.StringAt(loc, raw)
			if err != nil {
				return nil, err
			}
			sv := envy.NewSensitive(v)
			in[name] = &envy.VarInput{Value: &sv}
		case '{':
			vo, err := o.Object(name)
			if err != nil {
				return nil, err
			}
			if err := vo.Only(varFields...); err != nil {
				return nil, err
			}
			vi, err := varInputAt(vo)
			if err != nil {
				return nil, err
			}
			in[name] = &vi
		default:
			return nil, wire.TypeError(loc, "string, an object or null")
		}
	}
	return in, nil
}

// bulkWrite serves a bulk write: it decodes the body (null deletes when
// allowNull) and answers what write did.
func (s *Server) bulkWrite(w http.ResponseWriter, r *http.Request, allowNull bool,
	write func(path string, in map[string]*envy.VarInput, c envy.Cond) (envy.WriteInfo, error)) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	in, err := s.bulkBody(w, r, allowNull)
	if err != nil {
		return err
	}
	wi, err := write(r.PathValue("path"), in, c)
	if err != nil {
		return err
	}
	wire.SetETag(w, wi.Revision)
	writeJSON(w, http.StatusOK, writeInfoView(wi))
	return nil
}

func (s *Server) handleMergeVars(w http.ResponseWriter, r *http.Request) error {
	return s.bulkWrite(w, r, true, func(path string, in map[string]*envy.VarInput, c envy.Cond) (envy.WriteInfo, error) {
		return s.svc.MergeVars(r.Context(), path, in, envy.SetOptions{Cond: c})
	})
}

func (s *Server) handleReplaceVars(w http.ResponseWriter, r *http.Request) error {
	return s.bulkWrite(w, r, false, func(path string, bulk map[string]*envy.VarInput, c envy.Cond) (envy.WriteInfo, error) {
		in := make(map[string]envy.VarInput, len(bulk))
		for k, v := range bulk {
			in[k] = *v
		}
		return s.svc.ReplaceVars(r.Context(), path, in, c)
	})
}

func (s *Server) handleDeleteVar(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	wi, err := s.svc.DeleteVar(r.Context(), r.PathValue("path"), r.PathValue("name"), c)
	return writeDeleted(w, wi, err)
}

// The resolved env.

func (s *Server) handleEnv(w http.ResponseWriter, r *http.Request) error {
	format, err := queryEnum(r, "format", "json", "dotenv", "shell")
	if err != nil {
		return err
	}
	raw, err := queryBool(r, "raw")
	if err != nil {
		return err
	}
	contentType := "text/plain; charset=utf-8"
	if format == "json" {
		contentType = wire.ContentTypeJSON
	}
	return writeReply(w, contentType, func(b []byte) (envy.EncodedReply, error) {
		return s.svc.EnvReplyRaw(r.Context(), r.PathValue("path"), format, raw, b, func(b []byte, env envy.Env) ([]byte, error) {
			if format == "json" {
				return appendEnvJSON(b, env), nil
			}
			kvs := make([]dotenv.KV, 0, len(env.Vars))
			for _, v := range env.Vars {
				kvs = append(kvs, dotenv.KV{Name: v.Name, Value: v.Value.Reveal()})
			}
			buf := bytes.NewBuffer(b)
			if err := dotenv.WriteFormat(buf, dotenv.Format(format), kvs); err != nil {
				return nil, err
			}
			return buf.Bytes(), nil
		})
	})
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
	return writeList(w, page, err, changeView)
}

func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) error {
	c, err := cond(r)
	if err != nil {
		return err
	}
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("revision"); err != nil {
		return err
	}
	rev, err := o.RequiredInteger("revision")
	if err != nil {
		return err
	}
	wi, err := s.svc.Rollback(r.Context(), r.PathValue("path"), rev, c)
	if err != nil {
		return err
	}
	wire.SetETag(w, wi.Revision)
	writeJSON(w, http.StatusOK, writeInfoView(wi))
	return nil
}
