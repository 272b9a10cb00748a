package dialect

import "net/http"

// Route is the frame of a dialect's routes. Replies are never cached;
// begin authenticates the request and finds the scope it addresses,
// returning the request to go on with (the authenticated one, once there
// is one); fn serves it; writeError answers the error of either in the
// dialect's envelope.
func Route(
	begin func(r *http.Request) (*http.Request, string, error),
	fn func(w http.ResponseWriter, r *http.Request, scope string) error,
	writeError func(w http.ResponseWriter, r *http.Request, err error),
) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		r, scope, err := begin(r)
		if err == nil {
			err = fn(w, r, scope)
		}
		if err != nil {
			writeError(w, r, err)
		}
	})
}
