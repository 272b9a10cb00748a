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
