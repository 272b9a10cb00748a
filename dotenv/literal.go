package dotenv

import "strings"

// envy expands "${NAME}" and "${scope/path:NAME}" in a stored value (a
// reference) and reads "$${" as a literal "${". A file written by `envy
// export` without --raw holds expanded values, where a literal "${" would
// read as a reference once imported: these say which values hold one, and
// escape them, for the CLI's import and the dashboard's alike.

// Literal returns kvs with each "${" of a value escaped as "$${", so that
// envy stores the value the file holds and expands nothing. Replacing
// every "${" is enough: the escaped form starts with "$$", which never
// completes a "$${" with a "$" before it.
func Literal(kvs []KV) []KV {
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		out[i] = KV{Name: kv.Name, Value: strings.ReplaceAll(kv.Value, "${", "$${")}
	}
	return out
}

// NamesWithRefs returns the names of kvs whose values envy expands, once
// each, in the file's order: those that hold "${", which is a reference,
// a "$${" (a literal "${" once stored), or a "${" that is no reference
// (which envy refuses, naming the var).
func NamesWithRefs(kvs []KV) []string {
	var names []string
	seen := map[string]bool{}
	for _, kv := range kvs {
		if strings.Contains(kv.Value, "${") && !seen[kv.Name] {
			seen[kv.Name] = true
			names = append(names, kv.Name)
		}
	}
	return names
}
