package envy

func (s *Service) seal(scope, name string, version int64, v Sensitive) ([]byte, error) {
	b, err := s.keys.Seal([]byte(v.Reveal()), AD(scope, name, version))
	if err != nil {
		return nil, Errorf(EInternal, "cannot seal %s/%s", scope, name)
	}
	return b, nil
}

func (s *Service) open(scope string, name string, version int64, sealed []byte) (Sensitive, error) {
	b, err := s.keys.Open(sealed, AD(scope, name, version))
	if err != nil {
		s.log.Error("cannot open a value", "scope", scope, "name", name, "version", version, "err", err)
		return Sensitive{}, Errorf(EInternal, "cannot open the value of %s in scope %s (version %d)", name, scope, version)
	}
	return NewSensitive(string(b)), nil
}

// AppendOpener is a Keyring that can open a value into the caller's
// buffer (crypto.Keyring can), so that a read of many values needs one
// buffer rather than one allocation per value.
type AppendOpener interface {
	// OpenAppend appends the plaintext of sealed to dst, as Open opens it.
	OpenAppend(dst, sealed, ad []byte) ([]byte, error)
}

// openMany opens n values, value i being at(i), with a few allocations in
// all rather than several per value: the additional data is built in one
// reused buffer, the plaintexts are appended to one arena that becomes one
// string, and each Sensitive points into one slice of strings. The values
// share that string, so they are for a reply, not for keeping.
func (s *Service) openMany(n int, at func(i int) (scope, name string, version int64, sealed []byte)) ([]Sensitive, error) {
	out := make([]Sensitive, n)
	ao, ok := s.keys.(AppendOpener)
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
		ad = AppendAD(ad[:0], scope, name, version)
		var err error
		if arena, err = ao.OpenAppend(arena, sealed, ad); err != nil {
			clear(arena[:cap(arena)])
			s.log.Error("cannot open a value", "scope", scope, "name", name, "version", version, "err", err)
			return nil, Errorf(EInternal, "cannot open the value of %s in scope %s (version %d)", name, scope, version)
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
		out[i] = Sensitive{p: &strs[i]}
	}
	return out, nil
}
