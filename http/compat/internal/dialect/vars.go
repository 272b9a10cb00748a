package dialect

import (
	"context"

	"github.com/envy-dev/envy"
)

// Vars returns a scope's own vars, secrets masked. A scope that does not
// exist yet has none when the caller may see it at all; one it may not see
// stays the service's not found, exactly as one that does not exist.
func Vars(ctx context.Context, svc *envy.Service, scope string) ([]envy.VarView, error) {
	l, err := svc.ListVars(ctx, scope, false)
	if envy.ErrorCode(err) == envy.ENotFound && svc.Visible(ctx, scope) {
		return nil, nil
	}
	return l.Items, err
}

// ByID addresses a scope's vars by id, for the seeds that name vars by
// UUID; the service addresses them by name.
type ByID struct {
	Svc       *envy.Service
	InvalidID error // the dialect's refusal of an id that is not a UUID
	// NotFound is the dialect's not found, for a var (or a scope) that does
	// not exist where the caller may see it; a scope it may not see stays
	// the service's not found.
	NotFound error
}

// Check refuses an id that is not a UUID.
func (b *ByID) Check(id string) error {
	if !IsUUID(id) {
		return b.InvalidID
	}
	return nil
}

// Get returns the var with id (any letter case) in scope, secret masked.
func (b *ByID) Get(ctx context.Context, scope, id string) (envy.VarView, error) {
	if err := b.Check(id); err != nil {
		return envy.VarView{}, err
	}
	v, err := b.Svc.GetVarByID(ctx, scope, id, false)
	if envy.ErrorCode(err) == envy.ENotFound && b.Svc.Visible(ctx, scope) {
		return envy.VarView{}, b.NotFound
	}
	return v, err
}

// SetValue replaces the value of the var with id in scope, keeping the
// rest of it, and returns the var as written. A var deleted between the
// lookup and the write is not found.
func (b *ByID) SetValue(ctx context.Context, scope, id, value string) (envy.VarView, error) {
	cur, err := b.Get(ctx, scope, id)
	if err != nil {
		return envy.VarView{}, err
	}
	sv := envy.NewSensitive(value)
	v, _, err := b.Svc.SetVar(ctx, scope, cur.Name, envy.VarInput{Value: &sv}, envy.SetOptions{Mode: envy.UpdateOnly, ScopeMustExist: true})
	if envy.ErrorCode(err) == envy.ENotFound {
		return envy.VarView{}, b.NotFound
	}
	return v, err
}

// Delete deletes the var with id in scope.
func (b *ByID) Delete(ctx context.Context, scope, id string) error {
	v, err := b.Get(ctx, scope, id)
	if err != nil {
		return err
	}
	_, err = b.Svc.DeleteVar(ctx, scope, v.Name, envy.Cond{})
	return err
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
