package service

import (
	"errors"
	"strconv"
	"testing"
)

func TestFetchPage(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	fetch := func(from int) func(n int) ([]int, error) {
		return func(n int) ([]int, error) {
			return all[from:min(from+n, len(all))], nil
		}
	}
	cursor := func(last int) string { return strconv.Itoa(last) }
	p, err := fetchPage(2, fetch(0), cursor)
	if err != nil || len(p.Items) != 2 || p.Items[1] != 2 || p.NextCursor != "2" {
		t.Fatalf("first page = %+v, %v; want [1 2] next 2", p, err)
	}
	p, err = fetchPage(3, fetch(2), cursor)
	if err != nil || len(p.Items) != 3 || p.NextCursor != "" {
		t.Fatalf("last page = %+v, %v; want [3 4 5] and no next", p, err)
	}
	boom := errors.New("boom")
	if _, err := fetchPage(2, func(int) ([]int, error) { return nil, boom }, cursor); err != boom {
		t.Fatalf("err = %v, want the fetch's", err)
	}
}
