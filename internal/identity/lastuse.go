package identity

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// LastUseStore records when access tokens and service tokens were last used.
type LastUseStore interface {
	// NoteAccessTokensUsed sets each token's last use to the time given
	// unless a later one is recorded. Nothing any cache holds changes.
	NoteAccessTokensUsed(ctx context.Context, used map[string]time.Time) error
	// NoteServiceTokensUsed does the same for service tokens.
	NoteServiceTokensUsed(ctx context.Context, used map[string]time.Time) error
}

// LastUseEvery is how often a node writes the last use of the access
// tokens and service tokens its requests were authenticated with: a
// token's last use, as listings show it, is at most this much behind.
const LastUseEvery = 30 * time.Second

// maxPendingUses bounds the tokens one node remembers between two writes
// (about 100 bytes each); a token first used past it is noted at a later
// interval.
const maxPendingUses = 100_000

// LastUse gathers the access tokens and service tokens that authenticated
// requests and writes their last use in one transaction every LastUseEvery,
// so that a request costs a map write, not a database write, and an idle
// server writes nothing. Tokens with a use limit are not noted: counting
// their use records it at once.
type LastUse struct {
	store   LastUseStore
	log     *slog.Logger
	flushMu sync.Mutex // one Flush at a time: a Flush returns after every earlier note is written
	mu      sync.Mutex
	used    map[string]time.Time // access tokens
	service map[string]time.Time // service tokens
}

func newLastUse(st LastUseStore) *LastUse {
	return &LastUse{store: st, log: slog.Default(), used: map[string]time.Time{}, service: map[string]time.Time{}}
}

// SetLogger sets where failed writes are logged (nil: slog.Default()).
func (l *LastUse) SetLogger(log *slog.Logger) {
	if log != nil {
		l.log = log
	}
}

// note records that access token id authenticated a request at t.
func (l *LastUse) note(id string, t time.Time) {
	l.mu.Lock()
	noteIn(l.used, id, t)
	l.mu.Unlock()
}

// noteService records that service token id authenticated a request at t.
func (l *LastUse) noteService(id string, t time.Time) {
	l.mu.Lock()
	noteIn(l.service, id, t)
	l.mu.Unlock()
}

func noteIn(m map[string]time.Time, id string, t time.Time) {
	if prev, ok := m[id]; ok {
		if t.After(prev) {
			m[id] = t
		}
	} else if len(m) < maxPendingUses {
		m[id] = t
	}
}

// Flush writes what was noted since the last write, after any write under
// way. What fails to be written is kept for the next one (unless a later use
// replaced it).
func (l *LastUse) Flush(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	used, service := l.used, l.service
	if len(used) == 0 && len(service) == 0 {
		l.mu.Unlock()
		return nil
	}
	l.used, l.service = make(map[string]time.Time, len(used)), make(map[string]time.Time, len(service))
	l.mu.Unlock()
	var err, serr error
	if len(used) > 0 {
		err = l.store.NoteAccessTokensUsed(ctx, used)
	}
	if len(service) > 0 {
		serr = l.store.NoteServiceTokensUsed(ctx, service)
	}
	l.mu.Lock()
	if err != nil {
		for id, t := range used {
			noteIn(l.used, id, t)
		}
	}
	if serr != nil {
		for id, t := range service {
			noteIn(l.service, id, t)
		}
	}
	l.mu.Unlock()
	return errors.Join(err, serr)
}

// Run writes the noted uses every LastUseEvery until ctx ends, then once
// more.
func (l *LastUse) Run(ctx context.Context) {
	tick := time.NewTicker(LastUseEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.Flush(fctx); err != nil {
				l.log.Warn("record tokens' last use at shutdown", "err", err.Error())
			}
			return
		case <-tick.C:
			if err := l.Flush(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("record tokens' last use", "err", err.Error())
			}
		}
	}
}
