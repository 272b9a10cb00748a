// Package dialect holds what every seed dialect under http/compat shares
// beyond the wire plumbing (package wire), so that each dialect is left
// with what its seed says: its routes, its shapes and its one error table.
// Here are the frame of a route (no-store, authenticate, find the scope,
// serve, answer the error in the dialect's envelope), the answers to a
// method or a path the dialect does not serve, and the addressing of vars
// by id or by listing a scope the way the service means a missing scope.
//
// A dialect's words stay in the dialect: its error table, its envelope and
// the wording of its refusals are its seed's, and this package only carries
// them. It imports the domain, the native http package (for mounting,
// authentication and the Server's settings), package wire and the standard
// library; never a storage or crypto package, and never a dialect.
package dialect

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// Codes of what only the dialects' routing tells apart; each dialect's
// table says how it answers them.
const (
	// CodeMethodNotAllowed is a method that a dialect's path does not
	// serve: 405.
	CodeMethodNotAllowed envy.Code = "dialect.method_not_allowed"
	// CodeNoRoute is a path under a dialect's prefix that it does not
	// serve: 404.
	CodeNoRoute envy.Code = "dialect.no_route"
)

// API is one dialect mounted on a server.
type API struct {
	Server *envyhttp.Server
	Svc    *service.Service
	Body   *wire.Body // reads request bodies in the dialect's words
	Errors *Errors
	// ContentType is that of the dialect's replies.
	ContentType string
	// WriteAudit is the audit action of a write refused before its body
	// is read (Route).
	WriteAudit envy.AuditAction
	// Begin authenticates a request and finds the scope it addresses,
	// returning the request to go on with (the authenticated one, once
	// there is one).
	Begin func(r *http.Request) (*http.Request, string, error)
}

// Config is what a dialect says about itself to New.
type Config struct {
	Name        string           // names the dialect in the log
	WriteAudit  envy.AuditAction // see API.WriteAudit
	Words       wire.Words
	SyntaxFirst bool // see wire.Body
	Table       Table
	Envelope    func(c Entry, e *envy.Error) any
	ContentType string
	Begin       func(r *http.Request) (*http.Request, string, error)
}

// New returns the dialect described by c, on api over svc: bodies read
// with the server's limits, internal errors logged to the server's logger.
func New(api *envyhttp.Server, svc *service.Service, c Config) *API {
	body := api.NewBody(c.Words)
	body.SyntaxFirst = c.SyntaxFirst
	return &API{
		Server:      api,
		Svc:         svc,
		Body:        body,
		Errors:      &Errors{Dialect: c.Name, Logger: api.Logger(), Table: c.Table, Envelope: c.Envelope, ContentType: c.ContentType},
		ContentType: c.ContentType,
		WriteAudit:  c.WriteAudit,
		Begin:       c.Begin,
	}
}

// JSON answers v as JSON in the dialect's Content-Type.
func (d *API) JSON(w http.ResponseWriter, status int, v any) {
	wire.WriteJSON(w, d.ContentType, status, v)
}

// Route serves fn on the scope that Begin finds; replies are never cached,
// and an error of either is answered in the dialect's envelope. A request
// that writes (any method but GET and HEAD) must be allowed to write the
// scope before its body is read.
func (d *API) Route(fn func(w http.ResponseWriter, r *http.Request, scope string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r, scope, err := d.Begin(r)
		if err == nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = d.Server.Permit(r, envy.ActWrite, scope, d.WriteAudit)
		}
		if err != nil {
			envyhttp.CloseUnread(w, r)
		} else {
			err = fn(w, r, scope)
		}
		if err != nil {
			d.Errors.Write(w, r, err)
		}
	})
}

// Routes are the handlers of one path by method ("GET" → fn).
type Routes = map[string]func(w http.ResponseWriter, r *http.Request, scope string) error

// Handle mounts the methods of one path: each of routes served by Route,
// any other method answered 405 with Allow and message(allow).
func (d *API) Handle(path string, message func(allow string) string, routes Routes) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if fn, ok := routes[m]; ok {
			allow = append(allow, m)
			d.Server.Handle(m+" "+path, d.Route(fn))
		}
	}
	list := strings.Join(allow, ", ")
	d.Server.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", list)
		d.Errors.Write(w, r, envy.Errorf(CodeMethodNotAllowed, "%s", message(list)))
	}))
}

// NotFound answers every path under prefix that no route of the dialect
// serves with not found in the dialect's envelope, and makes the server
// answer what it refuses there (a path it won't clean) in it too, so that
// a client of the platform reads every reply under its prefix.
func (d *API) NotFound(prefix, message string) {
	d.Server.HandleErrors(prefix, d.Errors.Write)
	d.Server.Handle(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		d.Errors.Write(w, r, &envy.Error{Code: CodeNoRoute, Message: message})
	}))
}

// Authenticate authenticates r with token through the server (its rate
// limits and audit of refusals). A refusal for want of a token takes the
// code missing, one of a token that is not valid the code invalid; ""
// keeps envy.EUnauthenticated.
func (d *API) Authenticate(r *http.Request, token string, missing, invalid envy.Code) (*http.Request, error) {
	ar, err := d.Server.Authenticate(r, token)
	if err != nil {
		code := invalid
		if token == "" {
			code = missing
		}
		if code != "" && envy.ErrorCode(err) == envy.EUnauthenticated {
			err = &envy.Error{Code: code, Message: envy.ErrorMessage(err)}
		}
		return r, err
	}
	return ar, nil
}

// IDScope is the scope prefix+id of a resource whose id is one scope
// segment. An id with a "/" (sent as %2F) is refused, naming it: it would
// reach another scope; any other id that can't be a segment is notFound,
// as no such resource can exist.
func IDScope(prefix, id string, notFound error) (string, error) {
	if strings.Contains(id, "/") {
		return "", envy.Invalid(envy.Field("path.id", "invalid_segment", "id %s holds a /; an id is one path segment", strconv.Quote(id)))
	}
	scope := prefix + id
	if envy.ValidateScopePath("path.id", scope) != nil {
		return "", notFound
	}
	return scope, nil
}

// SetETag sets the ETag of a reply to a scope's revision; a scope that
// does not exist yet (revision 0) has none.
func SetETag(w http.ResponseWriter, revision int64) {
	if revision > 0 {
		wire.SetETag(w, revision)
	}
}
