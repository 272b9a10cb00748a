// Package opt fills in the options that a caller leaves unset.
package opt

// Number is what an option with a default can be: a count, a size, a
// duration, a rate.
type Number interface {
	~int | ~int64 | ~float64
}

// Default sets *v to def when *v is zero or negative: an option left
// unset, or set to what can't be meant, takes its default.
func Default[T Number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
