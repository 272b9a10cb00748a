package dialect

import (
	"context"
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// Vars returns a scope's own vars, secrets masked. A scope that does not
// exist yet has none when the caller may see it at all; one it may not see
// stays the service's not found, exactly as one that does not exist.
func Vars(ctx context.Context, svc *service.Service, scope string) ([]envy.VarView, error) {
	l, err := svc.ListVarsResolved(ctx, scope, false)
	if envy.ErrorCode(err) == envy.ENotFound && svc.Visible(ctx, scope) {
		return nil, nil
	}
	return l.Items, err
}

// Views returns a scope's own vars (see Vars), each shown with view.
func Views[V any](ctx context.Context, svc *service.Service, scope string, view func(envy.VarView) V) ([]V, error) {
	vars, err := Vars(ctx, svc, scope)
	if err != nil {
		return nil, err
	}
	out := make([]V, 0, len(vars))
	for _, v := range vars {
		out = append(out, view(v))
	}
	return out, nil
}

// NameValue reads a create's {"name","value"} from a body that may also
// have the members extra.
func NameValue(o *wire.Object, extra ...string) (name, value string, err error) {
	if err := o.Only(append([]string{"name", "value"}, extra...)...); err != nil {
		return "", "", err
	}
	if name, err = o.RequiredString("name"); err != nil {
		return "", "", err
	}
	value, err = o.RequiredString("value")
	return name, value, err
}

// Create creates the var name in scope, refusing a name that is taken
// with taken(name), the dialect's words for it.
func Create(ctx context.Context, svc *service.Service, scope, name string, in envy.VarInput, taken func(name string) error) (envy.VarView, error) {
	v, _, err := svc.SetVar(ctx, scope, name, in, envy.SetOptions{Mode: envy.CreateOnly})
	if envy.ErrorCode(err) == envy.EConflict {
		return v, taken(name)
	}
	return v, err
}

// Secret is the input of a secret var with value v.
func Secret(v string) envy.VarInput {
	s, secret := envy.NewSensitive(v), true
	return envy.VarInput{Value: &s, Secret: &secret}
}

// ByID serves a scope's vars by id, for the seeds that name vars by UUID
// (the service names them by name): get, update of the value ({"value"}),
// delete. V is the dialect's view of a var.
type ByID[V any] struct {
	API       *API
	InvalidID error // the dialect's refusal of an id that is not a UUID
	// NotFound is the dialect's not found, for a var (or a scope) that does
	// not exist where the caller may see it; a scope it may not see stays
	// the service's not found.
	NotFound error
	View     func(envy.VarView) V
	// List makes the reply to a list of items: a page of them, headers, a
	// wrapper; nil answers them all as a bare array.
	List func(w http.ResponseWriter, r *http.Request, items []V) (any, error)
}

// Mount mounts the collection (GET lists, POST is create) and its items
// by id at collection+"/{id}" (GET, PUT updates the value, DELETE); other
// methods are answered 405 with message(allow).
func (b *ByID[V]) Mount(collection string, message func(allow string) string, create func(w http.ResponseWriter, r *http.Request, scope string) error) {
	b.API.Handle(collection, message, Routes{"GET": b.list, "POST": create})
	b.API.Handle(collection+"/{id}", message, Routes{"GET": b.Get, "PUT": b.Update, "DELETE": b.Delete})
}

// list answers the scope's vars.
func (b *ByID[V]) list(w http.ResponseWriter, r *http.Request, scope string) error {
	items, err := Views(r.Context(), b.API.Svc, scope, b.View)
	if err != nil {
		return err
	}
	var reply any = items
	if b.List != nil {
		if reply, err = b.List(w, r, items); err != nil {
			return err
		}
	}
	b.API.JSON(w, http.StatusOK, reply)
	return nil
}

// check refuses an id that is not a UUID.
func (b *ByID[V]) check(id string) error {
	if !IsUUID(id) {
		return b.InvalidID
	}
	return nil
}

// get returns the var with id (any letter case) in scope, secret masked.
func (b *ByID[V]) get(ctx context.Context, scope, id string) (envy.VarView, error) {
	if err := b.check(id); err != nil {
		return envy.VarView{}, err
	}
	v, err := b.API.Svc.GetVarByIDResolved(ctx, scope, id, false)
	if envy.ErrorCode(err) == envy.ENotFound && b.API.Svc.Visible(ctx, scope) {
		return envy.VarView{}, b.NotFound
	}
	return v, err
}

// Get answers the var {id}.
func (b *ByID[V]) Get(w http.ResponseWriter, r *http.Request, scope string) error {
	v, err := b.get(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		return err
	}
	b.API.JSON(w, http.StatusOK, b.View(v))
	return nil
}

// Update replaces the value of the var {id} with the body's {"value"},
// keeping the rest of it, and answers the var as written. A var deleted
// between the lookup and the write is not found.
func (b *ByID[V]) Update(w http.ResponseWriter, r *http.Request, scope string) error {
	id := r.PathValue("id")
	if err := b.check(id); err != nil {
		return err
	}
	o, err := b.API.Body.Object(w, r)
	if err != nil {
		return err
	}
	// Names are immutable: a "name" member is refused as unknown.
	if err := o.Only("value"); err != nil {
		return err
	}
	value, err := o.RequiredString("value")
	if err != nil {
		return err
	}
	ctx := r.Context()
	cur, err := b.get(ctx, scope, id)
	if err != nil {
		return err
	}
	sv := envy.NewSensitive(value)
	v, _, err := b.API.Svc.SetVar(ctx, scope, cur.Name, envy.VarInput{Value: &sv}, envy.SetOptions{Mode: envy.UpdateOnly, ScopeMustExist: true})
	if envy.ErrorCode(err) == envy.ENotFound {
		return b.NotFound
	}
	if err != nil {
		return err
	}
	b.API.JSON(w, http.StatusOK, b.View(v))
	return nil
}

// Delete deletes the var {id}: 204.
func (b *ByID[V]) Delete(w http.ResponseWriter, r *http.Request, scope string) error {
	ctx := r.Context()
	v, err := b.get(ctx, scope, r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err = b.API.Svc.DeleteVar(ctx, scope, v.Name, envy.Cond{}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// IsUUID reports whether id is a UUID: 8-4-4-4-12 hex digits, any case.
func IsUUID(id string) bool {
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
