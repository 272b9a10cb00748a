package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Scopes.

// ListScopes returns a page of the scopes that the token may read, those
// whose path starts with prefix when it is not empty. limit 0 means the
// server's default (100).
func (c *Client) ListScopes(ctx context.Context, prefix, cursor string, limit int) (*Page[Scope], error) {
	q := url.Values{}
	setNonEmpty(q, "prefix", prefix)
	setNonEmpty(q, "cursor", cursor)
	setLimit(q, limit)
	var out Page[Scope]
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/scopes", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutScope creates the scope at path, or updates its description and
// inherits.
func (c *Client) PutScope(ctx context.Context, path string, in ScopeInput, opts ...WriteOption) (*ScopeWrite, error) {
	if errs := badText(nil, in.Description, "body."); len(errs) > 0 {
		return nil, notSent(errs)
	}
	var out ScopeWrite
	rep, err := c.call(ctx, request{method: http.MethodPut, path: scopeURL(path), body: in, write: opts}, &out)
	if err != nil {
		return nil, err
	}
	out.Created = rep.status == http.StatusCreated
	return &out, nil
}

// GetScope returns the scope at path, with VarCount. Returns a not_found
// *Error if it does not exist or the token may not read it.
func (c *Client) GetScope(ctx context.Context, path string) (*Scope, error) {
	var out Scope
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(path)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteScope deletes the scope and its vars; deleting one that does not
// exist is not an error. Returns a conflict *Error while another scope
// inherits it.
func (c *Client) DeleteScope(ctx context.Context, path string, opts ...WriteOption) (*WriteResult, error) {
	rep, err := c.call(ctx, request{method: http.MethodDelete, path: scopeURL(path), write: opts}, nil)
	if err != nil {
		return nil, err
	}
	return &WriteResult{Scope: path, Revision: etagRevision(rep.header)}, nil
}

// Vars.

// ListVars returns the scope's own vars, by name. With reveal, secrets
// come with their values (the token needs reveal; a forbidden *Error
// otherwise).
func (c *Client) ListVars(ctx context.Context, scope string, reveal bool) (*VarList, error) {
	var out VarList
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(scope, "vars"), query: revealQuery(reveal)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Resolved returns the scope's resolution as the server decides it: its
// layers in merge order, each var with the scope it comes from and, when
// a later layer overrides it, the scope whose value wins. Secrets are
// masked unless reveal (the token needs reveal on every layer shown).
func (c *Client) Resolved(ctx context.Context, scope string, reveal bool) (*Resolved, error) {
	var out Resolved
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(scope, "resolved"), query: revealQuery(reveal)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetVar returns one var of the scope.
func (c *Client) GetVar(ctx context.Context, scope, name string, reveal bool) (*Var, error) {
	var out Var
	if _, err := c.call(ctx, request{method: http.MethodGet, path: varURL(scope, name), query: revealQuery(reveal)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetVar creates or updates a var (PUT). Fields left nil keep their
// current value; a new var needs a Value.
func (c *Client) SetVar(ctx context.Context, scope, name string, in VarInput, opts ...WriteOption) (*VarWrite, error) {
	return c.writeVar(ctx, http.MethodPut, scope, name, in, opts)
}

// UpdateVar changes fields of an existing var (PATCH). Returns a not_found
// *Error if the var does not exist.
func (c *Client) UpdateVar(ctx context.Context, scope, name string, in VarInput, opts ...WriteOption) (*VarWrite, error) {
	return c.writeVar(ctx, http.MethodPatch, scope, name, in, opts)
}

func (c *Client) writeVar(ctx context.Context, method, scope, name string, in VarInput, opts []WriteOption) (*VarWrite, error) {
	if errs := badText(in.Value, in.Description, "body."); len(errs) > 0 {
		return nil, notSent(errs)
	}
	var out VarWrite
	rep, err := c.call(ctx, request{method: method, path: varURL(scope, name), body: in, write: opts}, &out)
	if err != nil {
		return nil, err
	}
	out.Created = rep.status == http.StatusCreated
	return &out, nil
}

// DeleteVar deletes a var; deleting one that does not exist is not an
// error. The result's Revision is the write's, from the reply's ETag.
func (c *Client) DeleteVar(ctx context.Context, scope, name string, opts ...WriteOption) (*WriteResult, error) {
	rep, err := c.call(ctx, request{method: http.MethodDelete, path: varURL(scope, name), write: opts}, nil)
	if err != nil {
		return nil, err
	}
	return &WriteResult{Scope: scope, Revision: etagRevision(rep.header)}, nil
}

// badText returns the field errors of a value and a description (nil:
// not sent) that are not valid UTF-8, located under prefix as the server
// would locate them. JSON can't carry such a string as it is:
// encoding/json sends U+FFFD in place of each bad byte, and the server
// would store a value nobody typed, so the write is refused before
// anything is sent. The errors never hold the value.
func badText(value, description *string, prefix string) []FieldError {
	var errs []FieldError
	if value != nil && !utf8.ValidString(*value) {
		errs = append(errs, FieldError{Loc: prefix + "value", Msg: "value is not valid UTF-8 (nothing sent)", Type: "invalid_utf8"})
	}
	if description != nil && !utf8.ValidString(*description) {
		errs = append(errs, FieldError{Loc: prefix + "description", Msg: "description is not valid UTF-8 (nothing sent)", Type: "invalid_text"})
	}
	return errs
}

// notSent is the validation error of a write refused before it was sent:
// as the server's 422 would be, so that callers handle both alike.
func notSent(errs []FieldError) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Type: TypeValidation, Title: "Validation error", Errors: errs}
}

// MergeVars applies several changes as one revision, all or nothing: each
// name maps to the fields to set, or to nil to delete the var. 1–1000
// names.
func (c *Client) MergeVars(ctx context.Context, scope string, changes map[string]*VarInput, opts ...WriteOption) (*WriteResult, error) {
	return c.bulk(ctx, http.MethodPatch, scope, changes, opts)
}

// ReplaceVars makes the scope's own vars exactly the given set (0–1000
// names), as one revision. A nil entry is an error: there is nothing to
// delete in a replacement.
func (c *Client) ReplaceVars(ctx context.Context, scope string, vars map[string]*VarInput, opts ...WriteOption) (*WriteResult, error) {
	for name, in := range vars {
		if in == nil || in.Value == nil {
			return nil, fmt.Errorf("envy client: ReplaceVars: %s has no value", name)
		}
	}
	return c.bulk(ctx, http.MethodPut, scope, vars, opts)
}

func (c *Client) bulk(ctx context.Context, method, scope string, changes map[string]*VarInput, opts []WriteOption) (*WriteResult, error) {
	body := make(map[string]any, len(changes))
	var errs []FieldError
	for name, in := range changes {
		if in != nil {
			errs = append(errs, badText(in.Value, in.Description, "body."+name+".")...)
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Loc, b.Loc) })
		return nil, notSent(errs)
	}
	for name, in := range changes {
		switch {
		case in == nil:
			body[name] = nil
		case in.Value != nil && in.Secret == nil && in.Description == nil:
			body[name] = *in.Value // the short form: "NAME": "value"
		default:
			body[name] = in
		}
	}
	var out WriteResult
	if _, err := c.call(ctx, request{method: method, path: scopeURL(scope, "vars"), body: body, write: opts}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// The resolved env.

// Env returns the scope's resolved env in plaintext. The token needs
// reveal.
func (c *Client) Env(ctx context.Context, scope string) (*Env, error) {
	var out Env
	q := url.Values{"format": {"json"}}
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(scope, "env"), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnvText returns the scope's resolved env as the server renders it:
// format is "dotenv", "shell" or "json".
func (c *Client) EnvText(ctx context.Context, scope, format string) (string, error) {
	q := url.Values{"format": {format}}
	rep, err := c.do(ctx, request{method: http.MethodGet, path: scopeURL(scope, "env"), query: q})
	if err != nil {
		return "", err
	}
	return string(rep.body), nil
}

// History and rollback.

// History returns the scope's changes, newest first: those before revision
// before when it is not 0. limit 0 means the server's default. The page's
// NextCursor is the revision to pass as before for the next page.
func (c *Client) History(ctx context.Context, scope string, before int64, limit int) (*Page[Change], error) {
	return c.HistoryPage(ctx, scope, before, "", limit)
}

// HistoryPage returns a page of a scope's changes, newest first: those
// older than before (when > 0), or after cursor, the NextCursor of the
// previous page.
func (c *Client) HistoryPage(ctx context.Context, scope string, before int64, cursor string, limit int) (*Page[Change], error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", itoa64(before))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	setLimit(q, limit)
	var out Page[Change]
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(scope, "history"), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rollback makes a new revision whose vars equal those the scope had at
// revision rev.
func (c *Client) Rollback(ctx context.Context, scope string, rev int64, opts ...WriteOption) (*WriteResult, error) {
	var out WriteResult
	body := map[string]int64{"revision": rev}
	if _, err := c.call(ctx, request{method: http.MethodPost, path: scopeURL(scope, "rollback"), body: body, write: opts}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Consumers and status.

// ReportConsumer tells the server that the workload id runs the scope at
// report.Revision. A workload counts as live for 60 s after a report.
func (c *Client) ReportConsumer(ctx context.Context, scope, id string, report ConsumerReport) error {
	_, err := c.call(ctx, request{method: http.MethodPut, path: scopeURL(scope, "consumers", url.PathEscape(id)), body: report}, nil)
	return err
}

// DeleteConsumer tells the server that the workload id stopped, so that
// the scope's status no longer counts it. Deleting an absent consumer is
// no error.
func (c *Client) DeleteConsumer(ctx context.Context, scope, id string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: scopeURL(scope, "consumers", url.PathEscape(id))}, nil)
	return err
}

// Status tells whether every live consumer of the scope runs its current
// revision.
func (c *Client) Status(ctx context.Context, scope string) (*Status, error) {
	var out Status
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(scope, "status")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResumeRollout lets a scope's paused rollout go on (write on the
// scope); it reports whether the rollout was paused.
func (c *Client) ResumeRollout(ctx context.Context, scope string) (bool, error) {
	var out struct {
		Resumed bool `json:"resumed"`
	}
	if _, err := c.call(ctx, request{method: http.MethodPost, path: scopeURL(scope, "rollout", "resume")}, &out); err != nil {
		return false, err
	}
	return out.Resumed, nil
}

// Tokens.

// CreateToken creates a token (admin). The reply's Token field holds its
// plaintext, shown this once.
func (c *Client) CreateToken(ctx context.Context, in TokenInput) (*Token, error) {
	var out Token
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/tokens", body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTokens returns a page of tokens (admin).
func (c *Client) ListTokens(ctx context.Context, cursor string, limit int) (*Page[Token], error) {
	q := url.Values{}
	setNonEmpty(q, "cursor", cursor)
	setLimit(q, limit)
	var out Page[Token]
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/tokens", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetToken returns one token (admin).
func (c *Client) GetToken(ctx context.Context, id string) (*Token, error) {
	var out Token
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/tokens/" + url.PathEscape(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeOptions are the choices of RevokeToken.
type RevokeOptions struct {
	// Force revokes even the last live token with admin on **, which the
	// server otherwise refuses (409).
	Force bool
	// DryRun checks and counts, and revokes nothing.
	DryRun bool
}

// RevokeToken revokes a token and every live token it minted (admin), at
// once, on every server, and says how many tokens it ended.
func (c *Client) RevokeToken(ctx context.Context, id string, o RevokeOptions) (*Revocation, error) {
	q := url.Values{}
	if o.Force {
		q.Set("force", "true")
	}
	if o.DryRun {
		q.Set("dry_run", "true")
	}
	var out Revocation
	if _, err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/tokens/" + url.PathEscape(id), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Self returns the token the Client authenticates with: who am I.
func (c *Client) Self(ctx context.Context) (*Token, error) {
	var out Token
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/tokens/self"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Audit.

// Audit returns a page of the audit log (admin), newest first.
func (c *Client) Audit(ctx context.Context, query AuditQuery) (*Page[AuditEntry], error) {
	q := url.Values{}
	setNonEmpty(q, "scope", query.Scope)
	setNonEmpty(q, "actor", query.Actor)
	if !query.Since.IsZero() {
		q.Set("since", query.Since.UTC().Format(time.RFC3339Nano))
	}
	setNonEmpty(q, "cursor", query.Cursor)
	setLimit(q, query.Limit)
	var out Page[AuditEntry]
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/audit", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Helpers.

func varURL(scope, name string) string {
	return scopeURL(scope, "vars", url.PathEscape(name))
}

func revealQuery(reveal bool) url.Values {
	if !reveal {
		return nil
	}
	return url.Values{"reveal": {"true"}}
}

func setNonEmpty(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func setLimit(q url.Values, limit int) {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
}
