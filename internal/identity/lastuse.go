package identity

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LastUseStore records when access tokens were last used.
type LastUseStore interface {
	// NoteAccessTokensUsed sets each token's last use to the time given
	// unless a later one is recorded. Nothing any cache holds changes.
	NoteAccessTokensUsed(ctx context.Context, used map[string]time.Time) error
}

// LastUseEvery is how often a node writes the last use of the access
// tokens its requests were authenticated with: a token's last use, as
// listings show it, is at most this much behind.
const LastUseEvery = 30 * time.Second

// maxPendingUses bounds the tokens one node remembers between two writes
// (about 100 bytes each); a token first used past it is noted at a later
// interval.
const maxPendingUses = 100_000

// LastUse gathers the access tokens that authenticated requests and writes
// their last use in one transaction every LastUseEvery, so that a request
// costs a map write, not a database write, and an idle server writes
// nothing. Tokens with a use limit are not noted: counting their use
// records it at once.
type LastUse struct {
	store   LastUseStore
	log     *slog.Logger
	flushMu sync.Mutex // one Flush at a time: a Flush returns after every earlier note is written
	mu      sync.Mutex
	used    map[string]time.Time
}

func newLastUse(st LastUseStore) *LastUse {
	return &LastUse{store: st, log: slog.Default(), used: map[string]time.Time{}}
}

// SetLogger sets where failed writes are logged (nil: slog.Default()).
func (l *LastUse) SetLogger(log *slog.Logger) {
	if log != nil {
		l.log = log
	}
}

// note records that token id authenticated a request at t.
func (l *LastUse) note(id string, t time.Time) {
	l.mu.Lock()
	if prev, ok := l.used[id]; ok {
		if t.After(prev) {
			l.used[id] = t
		}
	} else if len(l.used) < maxPendingUses {
		l.used[id] = t
	}
	l.mu.Unlock()
}

// Flush writes what was noted since the last write, after any write under
// way. What fails to be written is kept for the next one (unless a later use
// replaced it).
func (l *LastUse) Flush(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	used := l.used
	if len(used) == 0 {
		l.mu.Unlock()
		return nil
	}
	l.used = make(map[string]time.Time, len(used))
	l.mu.Unlock()
	err := l.store.NoteAccessTokensUsed(ctx, used)
	if err != nil {
		for id, t := range used {
			l.note(id, t)
		}
	}
	return err
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
				l.log.Warn("record access tokens' last use at shutdown", "err", err.Error())
			}
			return
		case <-tick.C:
			if err := l.Flush(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("record access tokens' last use", "err", err.Error())
			}
		}
	}
}
