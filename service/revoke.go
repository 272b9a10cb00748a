package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/envy-dev/envy"
)

// RevokeOptions are the choices of a revocation.
type RevokeOptions struct {
	// Force revokes even the last live token that holds global admin
	// (admin on **), which is otherwise refused: nobody could administer
	// the server afterwards but through `envy server admin-token`.
	Force bool
	// DryRun checks and counts, and revokes nothing.
	DryRun bool
}

// Revoke revokes a token and every live token it minted, transitively,
// and returns how many tokens it ended (those already revoked or expired
// are not counted). Revoking the last live global admin, counting the
// tokens the revocation would end too, is refused (409) unless forced.
// A dry run does the same checks and counts, and changes nothing.
func (s *Service) Revoke(ctx context.Context, id string, o RevokeOptions) (int, error) {
	id = strings.ToLower(id)
	var t envy.Token
	if self := CallerFrom(ctx).Token; self != nil && self.ID == id {
		t = *self
	} else {
		var err error
		if t, err = s.tokenFor(ctx, id, envy.AuditTokenRevoke); err != nil {
			return 0, err
		}
	}
	all, err := s.allTokens(ctx)
	if err != nil {
		return 0, err
	}
	now := s.now()
	plan := envy.CountRevocation(all, id, now)
	n := plan.Ending
	refusal := func() error {
		what := fmt.Sprintf("token %s (%s)", id, t.Name)
		if n == 2 {
			what = fmt.Sprintf("token %s (%s) and the live token it minted", id, t.Name)
		} else if n > 2 {
			what += fmt.Sprintf(" and the %d live tokens it minted", n-1)
		}
		return envy.Errorf(envy.EConflict, "revoking %s would end the last live token with admin on **: nobody could administer this server afterwards; "+
			"create another admin token first, or force it (force=true; envy tokens revoke --force) and recover with `envy server admin-token` on the server's host; nothing revoked", what)
	}
	if plan.LeavesNoAdmin() && !o.Force {
		return n, refusal()
	}
	if o.DryRun {
		return n, nil
	}
	e := s.entry(ctx, envy.AuditTokenRevoke, "", []string{t.Name}, envy.OutcomeDeleted)
	// The store's notices of the tokens it revokes (follow.go) are the one
	// way the revocation reaches the token cache and the watch hub, here
	// as on every other server: the store publishes them to this server
	// before RevokeToken returns where it keeps tokens in process
	// (SQLite), so the next request is refused; on a shared store, where
	// they come a moment later, every use of a cached token is checked
	// against the store first (cachedToken), or none is cached.
	// Unless forced, the store checks again, in the revocation's own
	// transaction and serialized with every other such revocation on
	// every server, that an admin on ** is left: the count above may be
	// stale by then (another revocation, here or on another server).
	revoke := s.store.RevokeTokenKeepingAdmin
	if o.Force {
		revoke = s.store.RevokeToken
	}
	rec, err := s.toStreams(1)
	if err != nil {
		return 0, err
	}
	err = revoke(ctx, id, now, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		if errors.Is(err, envy.ErrLastAdmin) {
			return n, refusal()
		}
		return 0, err
	}
	// Count what the store ended: a token minted under it meanwhile is
	// ended too, one revoked meanwhile by someone else is not ours.
	after, err := s.allTokens(ctx)
	if err != nil {
		return n, nil // revoked; the count planned is the best known
	}
	was := make(map[string]bool, len(all))
	for _, x := range all {
		was[x.ID] = x.LiveAt(now)
	}
	ended := 0
	for id := range envy.Lineage(after, id) {
		for i := range after {
			x := &after[i]
			if x.ID != id || x.RevokedAt == nil || !x.RevokedAt.Equal(now) {
				continue
			}
			if l, known := was[x.ID]; !known || l {
				ended++
			}
		}
	}
	return ended, nil
}

// allTokens reads every token, page by page.
func (s *Service) allTokens(ctx context.Context) ([]envy.Token, error) {
	var all []envy.Token
	after := ""
	for {
		page, err := s.store.ListTokens(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// RecoveryActor is the actor of the audit entry of a token minted by
// RecoverAdmin.
const RecoveryActor = "recovery (envy server admin-token)"

// RecoverAdmin mints a new token with admin on **, whatever tokens
// exist: the way back in once the last admin token is revoked or lost.
// It is for `envy server admin-token`, run on the server's host with the
// data and the master key, never for an API. The mint is audited; the
// plaintext is returned this once.
func (s *Service) RecoverAdmin(ctx context.Context, name string) (envy.Token, string, error) {
	if name == "" || len(name) > 100 || !envy.Printable(name) {
		return envy.Token{}, "", envy.Invalid(envy.Field("--name", "invalid_name", "name must be 1 to 100 printable characters"))
	}
	value := envy.NewTokenValue()
	t := envy.Token{
		ID: newID(), Name: name, Owner: "admin", Hash: envy.HashToken(value),
		Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}},
		CreatedAt:   s.now(), CreatedBy: RecoveryActor,
	}
	e := envy.AuditEntry{At: t.CreatedAt, Actor: RecoveryActor, Action: envy.AuditTokenCreate, Names: []string{t.Name}, Status: envy.OutcomeCreated, Count: 1}
	if _, err := s.store.CreateToken(ctx, t, false, []envy.AuditEntry{e}); err != nil {
		return envy.Token{}, "", err
	}
	s.offer(e)
	return t, value, nil
}
