package storeutil

import (
	"slices"

	"github.com/envy-dev/envy"
)

// SameKeys checks that keys name exactly the data keys ids: a rotation
// planned over one set of keys must not apply to another (EConflict).
func SameKeys(ids []uint32, keys []envy.DataKey) error {
	want := make([]uint32, 0, len(keys))
	for _, k := range keys {
		want = append(want, k.ID)
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		return envy.Errorf(envy.EConflict, "the data keys changed while they were being rewrapped (another rotation?): try again")
	}
	return nil
}
