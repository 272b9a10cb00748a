package service

import (
	"context"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// A platform's SDK signs in the way it signs in to the platform: a client
// id and a client secret traded for an access token (OAuth 2.0 client
// credentials). In envy the client secret is an envy token, the client id
// that token's id or name, and the access token a new child of it with the
// same grants and a short life, so that revoking the secret ends it.

// signInTrustPrefix marks the tokens a sign-in minted in Token.Trust:
// "signin:" and the dialect. No trust can be so named (a trust's name has
// no ':'), so no trust's deletion reaches them, and the sweep prunes them
// a day after they end, as it prunes the logins' tokens.
const signInTrustPrefix = "signin:"

// SignIn trades the caller's token (authenticated as the client secret) for
// an access token that lives at most life and no longer than the caller's
// token: a child of it with the same grants, in the same lineage (so it
// shares its rate limit). clientID must be the caller token's id or name;
// any other is "invalid client", audited as a refused sign-in (never the
// secret). dialect names the platform in the token's lineage.
func (s *Service) SignIn(ctx context.Context, dialect, clientID string, life time.Duration) (envy.Token, string, error) {
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return envy.Token{}, "", envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if clientID == "" || (!strings.EqualFold(clientID, caller.ID) && clientID != caller.Name) {
		e := s.entry(ctx, envy.AuditSignIn, "", []string{dialect, "refused: the client id is not the secret's token"}, envy.OutcomeUnauthenticated)
		// One row each, with the reason, up to the cap of a client's
		// refused logins a minute; beyond, counted in its aggregated row.
		if s.loginRefusals.admit(e.Client, e.At) {
			s.enqueue(auditItem{e: e})
		} else {
			s.Refused(ctx, envy.AuditSignIn, "", envy.OutcomeUnauthenticated)
		}
		return envy.Token{}, "", envy.Errorf(envy.EUnauthenticated, "invalid client credentials")
	}
	now := s.now()
	exp := now.Add(life)
	if caller.ExpiresAt != nil && caller.ExpiresAt.Before(exp) {
		exp = *caller.ExpiresAt
	}
	plain := envy.NewTokenValue()
	id := newID()
	tok := envy.Token{ID: id, Name: signInTrustPrefix + dialect + ":" + caller.Name, Owner: signInTrustPrefix + id,
		Hash: envy.HashToken(plain), Permissions: caller.Permissions, CreatedAt: now, CreatedBy: caller.Name,
		ParentID: caller.ID, RootID: caller.Root(), ExpiresAt: &exp, Trust: signInTrustPrefix + dialect, Subject: caller.ID}
	e := s.entry(ctx, envy.AuditSignIn, "", []string{dialect}, envy.OutcomeCreated)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.Token{}, "", err
	}
	_, err = s.store.CreateToken(ctx, tok, false, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		return envy.Token{}, "", err
	}
	return tok, plain, nil
}
