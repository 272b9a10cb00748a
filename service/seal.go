package service

import "github.com/envy-dev/envy"

func (s *Service) seal(scope, name string, version int64, v envy.Sensitive) ([]byte, error) {
	b, err := s.keys.Seal([]byte(v.Reveal()), envy.AD(scope, name, version))
	if err != nil {
		return nil, envy.Errorf(envy.EInternal, "cannot seal %s/%s", scope, name)
	}
	return b, nil
}

func (s *Service) open(scope string, name string, version int64, sealed []byte) (envy.Sensitive, error) {
	b, err := s.keys.Open(sealed, envy.AD(scope, name, version))
	if err != nil {
		s.log.Error("cannot open a value", "scope", scope, "name", name, "version", version, "err", err)
		return envy.Sensitive{}, envy.Errorf(envy.EInternal, "cannot open the value of %s in scope %s (version %d)", name, scope, version)
	}
	return envy.NewSensitive(string(b)), nil
}

// openMany opens n values, value i being at(i), with a few allocations in
// all rather than several per value: the additional data is built in one
// reused buffer, the plaintexts are appended to one arena that becomes one
// string, and each Sensitive points into one slice of strings. The values
// share that string, so they are for a reply, not for keeping.
func (s *Service) openMany(n int, at func(i int) (scope, name string, version int64, sealed []byte)) ([]envy.Sensitive, error) {
	out := make([]envy.Sensitive, n)
	ao, ok := s.keys.(envy.AppendOpener)
	if !ok {
		for i := range out {
			scope, name, version, sealed := at(i)
			v, err := s.open(scope, name, version, sealed)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	size := 0
	for i := 0; i < n; i++ {
		_, _, _, sealed := at(i)
		size += len(sealed) // a plaintext is shorter than its sealed form
	}
	arena := make([]byte, 0, size)
	ends := make([]int, n)
	var ad []byte
	for i := 0; i < n; i++ {
		scope, name, version, sealed := at(i)
		ad = envy.AppendAD(ad[:0], scope, name, version)
		var err error
		if arena, err = ao.OpenAppend(arena, sealed, ad); err != nil {
			clear(arena[:cap(arena)])
			s.log.Error("cannot open a value", "scope", scope, "name", name, "version", version, "err", err)
			return nil, envy.Errorf(envy.EInternal, "cannot open the value of %s in scope %s (version %d)", name, scope, version)
		}
		ends[i] = len(arena)
	}
	all := string(arena)
	clear(arena[:cap(arena)]) // no plaintext left behind in a buffer nobody owns
	strs := make([]string, n)
	start := 0
	for i := range strs {
		strs[i] = all[start:ends[i]]
		start = ends[i]
	}
	envy.WrapSensitive(out, strs)
	return out, nil
}
