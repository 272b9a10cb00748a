package envy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// globCovers reports whether every path that glob a matches is matched by
// glob b, treating a's wildcards as what they may match.
func globCovers(b, a string) bool {
	return coverSegs(strings.Split(b, "/"), strings.Split(a, "/"))
}

func coverSegs(b, a []string) bool {
	if len(b) == 0 {
		return len(a) == 0
	}
	if b[0] == "**" {
		for i := 0; i <= len(a); i++ {
			if coverSegs(b[1:], a[i:]) {
				return true
			}
		}
		return false
	}
	if len(a) == 0 || a[0] == "**" {
		return false
	}
	if b[0] == "*" || b[0] == a[0] && a[0] != "*" {
		return coverSegs(b[1:], a[1:])
	}
	return false
}

// holds reports whether the token holds action a on every scope glob g matches.
func holds(t *Token, g string, a Action) bool {
	for _, own := range t.Permissions {
		if grantAllows(own, a) && globCovers(own.Scopes, g) {
			return true
		}
	}
	return false
}

func validAction(a Action) bool {
	switch a {
	case ActRead, ActWrite, ActReveal, ActAdmin:
		return true
	}
	return false
}

// CreateToken creates a token and returns it with its plaintext, shown
// this once. A token can't grant more than its creator holds, and only a
// holder of admin may create tokens.
func (s *Service) CreateToken(ctx context.Context, in TokenInput) (Token, string, error) {
	creator := CallerFrom(ctx).Token
	var fields []FieldError
	if in.Name == "" || len(in.Name) > 100 || !printable(in.Name) {
		fields = append(fields, Field("body.name", "invalid_name", "name must be 1 to 100 printable characters"))
	}
	if in.Owner == "" {
		in.Owner = in.Name
	} else if len(in.Owner) > 100 || !printable(in.Owner) {
		fields = append(fields, Field("body.owner", "invalid_owner", "owner must be 1 to 100 printable characters"))
	}
	if len(in.Permissions) == 0 {
		fields = append(fields, Field("body.permissions", "missing", "at least one permission is required"))
	}
	for i, g := range in.Permissions {
		loc := fmt.Sprintf("body.permissions[%d]", i)
		if f := ValidateGlob(loc+".scopes", g.Scopes); f != nil {
			fields = append(fields, *f)
		}
		if len(g.Actions) == 0 {
			fields = append(fields, Field(loc+".actions", "missing", "at least one action is required"))
		}
		for j, a := range g.Actions {
			if !validAction(a) {
				fields = append(fields, Field(fmt.Sprintf("%s.actions[%d]", loc, j), "invalid_action", "action must be read, write, reveal or admin"))
			}
		}
	}
	now := s.now()
	var expires *time.Time
	switch {
	case in.ExpiresAt != nil && in.ExpiresIn != "":
		fields = append(fields, Field("body.expires_in", "exclusive", "give expires_at or expires_in, not both"))
	case in.ExpiresAt != nil:
		if !in.ExpiresAt.After(now) {
			fields = append(fields, Field("body.expires_at", "in_past", "expires_at must be in the future"))
		}
		e := in.ExpiresAt.UTC()
		expires = &e
	case in.ExpiresIn != "":
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 {
			fields = append(fields, Field("body.expires_in", "invalid_duration", "expires_in must be a positive duration such as 30s or 12h"))
		} else {
			e := now.Add(d)
			expires = &e
		}
	}
	if len(fields) > 0 {
		return Token{}, "", Invalid(fields...)
	}
	if creator == nil {
		return Token{}, "", Errorf(EUnauthenticated, "authentication required")
	}
	adminSomewhere := false
	for _, g := range creator.Permissions {
		adminSomewhere = adminSomewhere || grantAllows(g, ActAdmin)
	}
	if !adminSomewhere {
		s.Refused(ctx, "token.create", "", 403)
		return Token{}, "", Errorf(EForbidden, "creating tokens needs the admin permission")
	}
	for i, g := range in.Permissions {
		for _, a := range g.Actions {
			if !holds(creator, g.Scopes, ActAdmin) && !holds(creator, g.Scopes, a) {
				s.Refused(ctx, "token.create", "", 403)
				return Token{}, "", &Error{Code: EForbidden, Message: "a token can't grant more than its creator holds",
					Fields: []FieldError{Field(fmt.Sprintf("body.permissions[%d]", i), "exceeds_creator", "the creator does not hold %s on %s", a, g.Scopes)}}
			}
		}
	}
	plain := NewTokenValue()
	t := Token{ID: newID(), Name: in.Name, Owner: in.Owner, Hash: HashToken(plain), Permissions: in.Permissions,
		CreatedAt: now, CreatedBy: creator.Name, ExpiresAt: expires}
	e := s.entry(ctx, "token.create", "", []string{t.Name}, 201)
	if _, err := s.store.CreateToken(ctx, t, false, []AuditEntry{e}); err != nil {
		return Token{}, "", err
	}
	return t, plain, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func (s *Service) requireGlobalAdmin(ctx context.Context, action string) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return Errorf(EUnauthenticated, "authentication required")
	}
	if !isGlobalAdmin(t) {
		s.Refused(ctx, action, "", 403)
		return Errorf(EForbidden, "%s needs the admin permission on **", action)
	}
	return nil
}

// ListTokens lists tokens by id (global admin).
func (s *Service) ListTokens(ctx context.Context, cursor string, limit int) (Page[Token], error) {
	limit, err := limitOf("query.limit", limit)
	if err != nil {
		return Page[Token]{}, err
	}
	if err := s.requireGlobalAdmin(ctx, "token.list"); err != nil {
		return Page[Token]{}, err
	}
	items, err := s.store.ListTokens(ctx, cursor, limit+1)
	if err != nil {
		return Page[Token]{}, err
	}
	var p Page[Token]
	if len(items) > limit {
		items = items[:limit]
		p.NextCursor = items[limit-1].ID
	}
	p.Items = items
	return p, nil
}

// GetToken returns a token (global admin, or the token itself).
func (s *Service) GetToken(ctx context.Context, id string) (Token, error) {
	id = strings.ToLower(id)
	if t := CallerFrom(ctx).Token; t != nil && t.ID == id {
		return *t, nil
	}
	if err := s.requireGlobalAdmin(ctx, "token.get"); err != nil {
		return Token{}, err
	}
	return s.store.GetToken(ctx, id)
}

// RevokeToken revokes a token at once (global admin, or the token itself).
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	id = strings.ToLower(id)
	self := CallerFrom(ctx).Token
	if self == nil || self.ID != id {
		if err := s.requireGlobalAdmin(ctx, "token.revoke"); err != nil {
			return err
		}
	}
	t, err := s.store.GetToken(ctx, id)
	if err != nil {
		return err
	}
	e := s.entry(ctx, "token.revoke", "", []string{t.Name}, 204)
	if err := s.store.RevokeToken(ctx, id, s.now(), []AuditEntry{e}); err != nil {
		return err
	}
	s.tokens.Delete(string(t.Hash))
	s.hub.revoke(id)
	return nil
}

// Self returns the caller's token.
func (s *Service) Self(ctx context.Context) (Token, error) {
	t := CallerFrom(ctx).Token
	if t == nil {
		return Token{}, Errorf(EUnauthenticated, "authentication required")
	}
	return *t, nil
}

// Audit lists audit entries, newest first (global admin).
func (s *Service) Audit(ctx context.Context, q AuditListQuery) (Page[AuditEntry], error) {
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return Page[AuditEntry]{}, err
	}
	var before int64
	if q.Cursor != "" {
		if before, err = strconv.ParseInt(q.Cursor, 10, 64); err != nil || before < 1 {
			return Page[AuditEntry]{}, Invalid(Field("query.cursor", "invalid_cursor", "cursor is not one this server gave"))
		}
	}
	if err := s.requireGlobalAdmin(ctx, "audit.list"); err != nil {
		return Page[AuditEntry]{}, err
	}
	s.flushAudit(ctx) // so that the list shows every reveal and refusal made before it
	items, err := s.store.ListAudit(ctx, AuditQuery{Scope: q.Scope, Actor: q.Actor, Since: q.Since, Before: before, Limit: limit + 1})
	if err != nil {
		return Page[AuditEntry]{}, err
	}
	var p Page[AuditEntry]
	if len(items) > limit {
		items = items[:limit]
		p.NextCursor = strconv.FormatInt(items[limit-1].ID, 10)
	}
	p.Items = items
	return p, nil
}
