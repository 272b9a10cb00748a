package service

import (
	"context"
	"slices"

	"github.com/envy-dev/envy"
)

// replyCache keeps the encoded replies of resolved envs and masked var
// lists, by what they are (kind, format) and scope path, bounded in bytes:
// the plaintext cache. A reply holds plaintext (all of a resolved env,
// the non-secret values and the masks of a list), so it can be turned off
// (Options.PlaintextCacheBytes). An entry is good while the deps it was
// encoded from (envy.Resolution.Deps) are at the same revisions, as in the
// envCache: a changed dep, inherits included, takes a new revision, so an
// entry never serves a stale value, whether or not the change's notice
// has evicted it yet. Every notice of a change evicts the replies that
// depend on the scope (tagged by their deps' paths), so
// that plaintext does not outlive its version in memory longer than it
// must. The cache only saves opening and encoding: the caller is
// authorized, and a reveal audited, on every read.
type replyCache struct{ *lruCache[replyKey, *reply] }

type replyKey struct{ kind, format, path string }

type reply struct {
	deps  []envy.ScopeRev // shared with the resolution it was encoded from
	paths []string        // the deps' paths, its tags
	body  []byte
}

func newReplyCache(limit int) replyCache {
	return replyCache{newTaggedLRU[replyKey](limit, func(r *reply) []string { return r.paths })}
}

// invalidate forgets the replies that include scope.
func (c replyCache) invalidate(scope string) { c.RemoveTagged(scope) }

// cached returns the encoded reply for key when it was encoded from deps,
// or else encodes one with build and keeps a copy of it.
func (c replyCache) cached(key replyKey, deps []envy.ScopeRev, rev int64, build func() ([]byte, error)) (envy.EncodedReply, error) {
	if c.Limit() == 0 { // off: not even a lookup to count
		b, err := build()
		return envy.EncodedReply{Revision: rev, Body: b}, err
	}
	if r, ok := c.Get(key, func(r *reply) bool { return slices.Equal(r.deps, deps) }); ok {
		return envy.EncodedReply{Revision: rev, Body: r.body, Cached: true}, nil
	}
	gen := c.Generation()
	b, err := build()
	if err != nil {
		return envy.EncodedReply{}, err
	}
	r := &reply{deps: deps, paths: make([]string, len(deps)), body: slices.Clone(b)}
	size := 200 + len(key.kind) + len(key.format) + len(key.path) + len(b)
	for i, d := range deps {
		r.paths[i] = d.Path
		size += 64 + len(d.Path) // and its tag
	}
	c.Put(gen, key, r, size)
	return envy.EncodedReply{Revision: rev, Body: b}, nil
}

// EnvReply is Env encoded by encode, which appends the encoding of env
// to b; format names the encoding (one encoder per format name). The
// encoding is kept in the plaintext cache, so that the next read of the
// same scope, while none of its deps changes, skips opening the values
// and encoding them. Every call is authorized and its reveal audited as
// Env's is: the reply is returned only once its audit entry is durable.
func (s *Service) EnvReply(ctx context.Context, path, format string, b []byte, encode func(b []byte, env envy.Env) ([]byte, error)) (envy.EncodedReply, error) {
	return s.EnvReplyRaw(ctx, path, format, false, b, encode)
}

// EnvReplyRaw is EnvReply, with the values as stored, references not
// expanded, when raw (GET /-/env?raw=true).
//
// A caller whose token and tree were left unchecked (AuthenticateReveal)
// is answered from the tree as cached, and the reveal's audit entry is
// recorded only if, as the append records it, the token is live and every
// dep is at the revision it was resolved from. When it is not, nothing
// was recorded: the token is confirmed (refused if revoked) and the
// reply is made again from a checked read, as for any other caller. So is
// any other outcome worked out from the tree as cached (a refusal, a
// reference that does not resolve): the tree may be older than the
// request, and such an outcome is neither answered nor recorded before a
// checked read gives it again.
func (s *Service) EnvReplyRaw(ctx context.Context, path, format string, raw bool, b []byte, encode func(b []byte, env envy.Env) ([]byte, error)) (envy.EncodedReply, error) {
	out, err := s.envReply(ctx, path, format, raw, b, encode)
	if err == nil {
		return out, nil
	}
	c, ok := ctx.Value(CallerKey{}).(*Caller)
	if !ok || err != errCheckFailed && !c.servedUnchecked.Load() {
		return out, err
	}
	c.uncheckedTree.Store(false)
	c.servedUnchecked.Store(false)
	// One check for the token and the tree, which the read takes next.
	if err := s.confirmTokenFor(ctx, path); err != nil {
		return envy.EncodedReply{}, err
	}
	return s.envReply(ctx, path, format, raw, b, encode)
}

func (s *Service) envReply(ctx context.Context, path, format string, raw bool, b []byte, encode func(b []byte, env envy.Env) ([]byte, error)) (envy.EncodedReply, error) {
	r, err := s.envResolution(ctx, path, raw)
	if err != nil {
		return envy.EncodedReply{}, err
	}
	kind := "env"
	if raw {
		kind = "env-raw"
	}
	out, err := s.replies.cached(replyKey{kind, format, path}, r.Deps, r.Revision, func() ([]byte, error) {
		env, err := s.openEnvRaw(r, raw)
		if err != nil {
			return nil, err
		}
		return encode(b, env)
	})
	if err != nil {
		return envy.EncodedReply{}, err
	}
	var check *envy.AuditCheck
	c, _ := ctx.Value(CallerKey{}).(*Caller)
	switch tok := liveToken(ctx); {
	case s.checkedAudit != nil && (tok != "" || c != nil && c.servedUnchecked.Load()):
		// The token, unless confirmed meanwhile, and the tree.
		check = &envy.AuditCheck{Token: tok, Deps: r.Deps}
		// From here the check answers for the tree: an error of the
		// reveal's own (the audit can't be written) is not one to work
		// out again from a checked read.
		c.servedUnchecked.Store(false)
	case tok != "": // left to a write that this is not
		if err := s.ConfirmToken(ctx); err != nil {
			return envy.EncodedReply{}, err
		}
	}
	if err := s.revealedIf(ctx, path, nil, check); err != nil {
		return envy.EncodedReply{}, err
	}
	return out, nil
}

// VarListReply is ListVars, secrets masked, encoded by encode as
// EnvReply's is, and kept in the plaintext cache the same way.
func (s *Service) VarListReply(ctx context.Context, path, format string, b []byte, encode func(b []byte, vl envy.VarList) ([]byte, error)) (envy.EncodedReply, error) {
	if err := s.readAuth(ctx, path, envy.AuditVarsList, nil, false); err != nil {
		return envy.EncodedReply{}, err
	}
	// One read of the tree serves the list and the references' masks.
	r, tree, err := s.resolve(ctx, path)
	if err != nil {
		return envy.EncodedReply{}, err
	}
	sv := tree[path]
	deps := []envy.ScopeRev{{Path: path, Revision: sv.Scope.Revision}}
	spread, rdeps := s.spreadIn(ctx, path, r)
	if spread != nil {
		// The masks depend on the scopes the vars refer to, and on the caller.
		deps, format = rdeps, format+spreadKey(spread)
	}
	return s.replies.cached(replyKey{"vars", format, path}, deps, sv.Scope.Revision, func() ([]byte, error) {
		vl, err := s.listVars(path, sv, false)
		if err != nil {
			return nil, err
		}
		maskSpread(vl.Items, spread, false)
		return encode(b, vl)
	})
}
