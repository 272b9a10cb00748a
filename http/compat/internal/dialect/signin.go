package dialect

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
)

// Credentials are what an OAuth 2.0 client-credentials request carries: the
// grant type, the client's id and secret (from "Authorization: Basic" or
// the body), and the audience. The secret is an envy token: never log it.
type Credentials struct {
	GrantType, ClientID, ClientSecret, Audience string
}

// ReadCredentials reads the credentials of a token request whose body
// (already read, decoded) is raw: a JSON object, or a form when the
// Content-Type says application/x-www-form-urlencoded. Members that are not
// strings, and a body that is neither, read as absent: the platform's
// token endpoint answers what is missing. Basic credentials win over the
// body's.
func ReadCredentials(r *http.Request, raw []byte) Credentials {
	var c Credentials
	get := func(string) string { return "" }
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if q, err := url.ParseQuery(string(raw)); err == nil {
			get = q.Get
		}
	} else {
		var o map[string]any
		if json.Unmarshal(raw, &o) == nil {
			get = func(k string) string { s, _ := o[k].(string); return s }
		}
	}
	c.GrantType, c.ClientID, c.ClientSecret, c.Audience = get("grant_type"), get("client_id"), get("client_secret"), get("audience")
	if id, secret, ok := r.BasicAuth(); ok {
		c.ClientID, c.ClientSecret = id, secret
	}
	return c
}
