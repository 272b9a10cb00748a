package service

import "github.com/envy-dev/envy"

// limitOf reads a page size: 100 when unset, else 1 to 1000.
func limitOf(loc string, limit int) (int, error) {
	if limit == 0 {
		return 100, nil
	}
	if limit < 1 || limit > 1000 {
		return 0, envy.Invalid(envy.Field(loc, "out_of_range", "limit must be between 1 and 1000"))
	}
	return limit, nil
}

// fetchPage asks fetch for one item more than limit, which tells whether
// a next page exists without counting, and makes the page: at most limit
// items and, when more follow, the cursor of the last one kept.
func fetchPage[T any](limit int, fetch func(n int) ([]T, error), cursor func(last T) string) (envy.Page[T], error) {
	items, err := fetch(limit + 1)
	if err != nil {
		return envy.Page[T]{}, err
	}
	var p envy.Page[T]
	if len(items) > limit {
		items = items[:limit]
		p.NextCursor = cursor(items[limit-1])
	}
	p.Items = items
	return p, nil
}
