package envy

import (
	"context"
	"encoding/hex"
	"time"
)

// SessionAD returns the additional data that binds a session's sealed
// token to its row, so that it can't be swapped for a var's value (whose
// AD starts "envy/v1") or another session's token.
func SessionAD(idHash []byte) []byte {
	return []byte("session:" + hex.EncodeToString(idHash))
}

// BrowserSession is a dashboard session with its token opened: what the
// dashboard needs to serve a request. Its id is known only to the browser
// (its cookie) and to the server serving it; the store keeps its hash.
type BrowserSession struct {
	ID        string
	Token     string // the token's plaintext, authenticated again on every request
	CSRF      string
	CreatedAt time.Time
	UsedAt    time.Time
}

// The session methods serve the dashboard, which keeps its sessions in the
// store so that every server sharing it knows them. They check no caller:
// the token a session holds is authenticated on every request that uses
// it, and they are the dashboard's own bookkeeping, not an API.

// CreateSession stores a new session for token, created and used at at,
// with a new random id and CSRF token. The token is sealed, never stored
// in clear.
func (s *Service) CreateSession(ctx context.Context, token string, at time.Time) (BrowserSession, error) {
	bs := BrowserSession{ID: RandomID(), Token: token, CSRF: RandomID(), CreatedAt: at, UsedAt: at}
	hash := HashToken(bs.ID)
	sealed, err := s.keys.Seal([]byte(token), SessionAD(hash))
	if err != nil {
		return BrowserSession{}, Errorf(EInternal, "cannot seal the session")
	}
	err = s.store.CreateSession(ctx, Session{IDHash: hash, Sealed: sealed, CSRF: bs.CSRF, CreatedAt: at, UsedAt: at})
	if err != nil {
		return BrowserSession{}, err
	}
	return bs, nil
}

// Session returns the session with id, its token opened; ENotFound when
// there is none (or its token can't be opened, which is logged).
func (s *Service) Session(ctx context.Context, id string) (BrowserSession, error) {
	hash := HashToken(id)
	row, err := s.store.GetSession(ctx, hash)
	if err != nil {
		return BrowserSession{}, err
	}
	token, err := s.keys.Open(row.Sealed, SessionAD(hash))
	if err != nil {
		s.log.Error("cannot open a session's token", "err", err)
		return BrowserSession{}, Errorf(ENotFound, "unknown session")
	}
	return BrowserSession{ID: id, Token: string(token), CSRF: row.CSRF, CreatedAt: row.CreatedAt, UsedAt: row.UsedAt}, nil
}

// TouchSession records a use of the session with id at at.
func (s *Service) TouchSession(ctx context.Context, id string, at time.Time) error {
	return s.store.TouchSession(ctx, HashToken(id), at)
}

// EndSession deletes the session with id, so that it ends on every server.
func (s *Service) EndSession(ctx context.Context, id string) error {
	return s.store.DeleteSession(ctx, HashToken(id))
}

// PruneSessions deletes the sessions not used since usedBefore or created
// before createdBefore.
func (s *Service) PruneSessions(ctx context.Context, usedBefore, createdBefore time.Time) (int64, error) {
	return s.store.PruneSessions(ctx, usedBefore, createdBefore)
}
