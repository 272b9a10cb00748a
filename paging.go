package envy

// Page is one page of a list.
type Page[T any] struct {
	Items      []T
	NextCursor string // "" on the last page
}

func limitOf(loc string, limit int) (int, error) {
	if limit == 0 {
		return 100, nil
	}
	if limit < 1 || limit > 1000 {
		return 0, Invalid(Field(loc, "out_of_range", "limit must be between 1 and 1000"))
	}
	return limit, nil
}
