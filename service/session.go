package service

import (
	"context"
	"time"

	"github.com/envy-dev/envy"
)

// The session methods serve the dashboard, which keeps its sessions in the
// store so that every server sharing it knows them. They check no caller:
// the token a session holds is authenticated on every request that uses
// it, and they are the dashboard's own bookkeeping, not an API.

// CreateSession stores a new session for token, created and used at at,
// with a new random id and CSRF token. The token is sealed, never stored
// in clear.
func (s *Service) CreateSession(ctx context.Context, token string, at time.Time) (envy.BrowserSession, error) {
	bs := envy.BrowserSession{ID: envy.RandomID(), Token: token, CSRF: envy.RandomID(), CreatedAt: at, UsedAt: at}
	hash := envy.HashToken(bs.ID)
	sealed, err := s.keys.Seal([]byte(token), envy.SessionAD(hash))
	if err != nil {
		return envy.BrowserSession{}, envy.Errorf(envy.EInternal, "cannot seal the session")
	}
	err = s.store.CreateSession(ctx, envy.Session{IDHash: hash, Sealed: sealed, CSRF: bs.CSRF, CreatedAt: at, UsedAt: at})
	if err != nil {
		return envy.BrowserSession{}, err
	}
	return bs, nil
}

// Session returns the session with id, its token opened; ENotFound when
// there is none (or its token can't be opened, which is logged).
func (s *Service) Session(ctx context.Context, id string) (envy.BrowserSession, error) {
	hash := envy.HashToken(id)
	row, err := s.store.GetSession(ctx, hash)
	if err != nil {
		return envy.BrowserSession{}, err
	}
	token, err := s.keys.Open(row.Sealed, envy.SessionAD(hash))
	if err != nil {
		s.log.Error("cannot open a session's token", "err", err)
		return envy.BrowserSession{}, envy.Errorf(envy.ENotFound, "unknown session")
	}
	return envy.BrowserSession{ID: id, Token: string(token), CSRF: row.CSRF, CreatedAt: row.CreatedAt, UsedAt: row.UsedAt}, nil
}

// TouchSession records a use of the session with id at at.
func (s *Service) TouchSession(ctx context.Context, id string, at time.Time) error {
	return s.store.TouchSession(ctx, envy.HashToken(id), at)
}

// EndSession deletes the session with id, so that it ends on every server.
func (s *Service) EndSession(ctx context.Context, id string) error {
	return s.store.DeleteSession(ctx, envy.HashToken(id))
}

// PruneSessions deletes the sessions not used since usedBefore or created
// before createdBefore.
func (s *Service) PruneSessions(ctx context.Context, usedBefore, createdBefore time.Time) (int64, error) {
	return s.store.PruneSessions(ctx, usedBefore, createdBefore)
}
