package store

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockbox-dev/lockbox/internal/events"
)

// EventsChannel is the PostgreSQL NOTIFY channel secret events travel on.
const EventsChannel = "lockbox_events"

// maxNotifyPayload stays under PostgreSQL's 8000-byte NOTIFY payload limit.
const maxNotifyPayload = 7900

// EventFeed carries secret events to every node. On PostgreSQL, Publish
// sends each event with pg_notify and every node's Run holds one LISTEN
// connection feeding its local broker, so a node receives its own events the
// same way as everyone else's; on SQLite (one node) Publish hands events
// straight to the local broker.
type EventFeed struct {
	db     *DB
	broker *events.Broker
	log    *slog.Logger

	mu sync.Mutex
	up chan struct{} // closed while the LISTEN connection is live
}

// NewEventFeed returns the feed of db into broker; on PostgreSQL, Run must be
// running for subscribers to receive anything.
func NewEventFeed(db *DB, broker *events.Broker, log *slog.Logger) *EventFeed {
	if log == nil {
		log = slog.Default()
	}
	f := &EventFeed{db: db, broker: broker, log: log, up: make(chan struct{})}
	if db.dialect != Postgres {
		close(f.up)
	}
	return f
}

// notifyPayload is an event as sent through NOTIFY: never a value.
type notifyPayload struct {
	Type    events.Type `json:"t"`
	Project string      `json:"p"`
	Env     string      `json:"e"`
	Path    string      `json:"f"`
	Key     string      `json:"k"`
	Tags    []string    `json:"g,omitempty"`
	Version int         `json:"v"`
}

// Publish announces committed changes. It is called after the write has
// committed; a failure to notify is logged, never returned, because the
// write itself succeeded. (A crash between the commit and the notify loses
// the event; subscribers resync when they reconnect.)
func (f *EventFeed) Publish(ctx context.Context, evs []events.Event) {
	if len(evs) == 0 {
		return
	}
	if f.db.dialect != Postgres {
		f.broker.PublishAll(evs)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// One transaction: its notifications are delivered together, in order.
	err := f.db.transactQuiet(ctx, func(tx *Tx) error {
		for _, ev := range evs {
			b, err := json.Marshal(notifyPayload{ev.Type, ev.ProjectID, ev.Env, ev.Path, ev.Key, ev.Tags, ev.Version})
			if err != nil {
				return err
			}
			if len(b) > maxNotifyPayload {
				// Keys are at most 256 bytes; only a very deep path with many tags gets here.
				f.log.Warn("secret event too large to notify; dropped", "project", ev.ProjectID, "env", ev.Env)
				continue
			}
			if _, err := tx.exec(ctx, `SELECT pg_notify(?, ?)`, EventsChannel, string(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.log.Error("notify secret events", "err", err.Error(), "events", len(evs))
	}
}

// Subscribe waits (within ctx) until the feed is live, then subscribes to
// the local broker until ctx ends. A subscription that was granted sees every
// event committed after it, or ends with events.ErrInterrupted.
func (f *EventFeed) Subscribe(ctx context.Context, project string, match func(events.Event) bool) (*events.Subscription, error) {
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f.mu.Lock()
	up := f.up
	f.mu.Unlock()
	select {
	case <-up:
	case <-wait.Done():
		return nil, errors.New("event feed is not connected")
	}
	return f.broker.Subscribe(ctx, project, match), nil
}

// Ready is closed once the feed is live (at once on SQLite).
func (f *EventFeed) Ready() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

// Run keeps a LISTEN connection open on PostgreSQL until ctx ends,
// reconnecting with backoff, and feeds what it hears to the broker. When the
// connection is lost, subscribers are ended with events.ErrInterrupted: they
// may have missed events. On SQLite it returns at once.
func (f *EventFeed) Run(ctx context.Context) {
	if f.db.dialect != Postgres {
		return
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		live, err := f.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if live {
			backoff = 50 * time.Millisecond
		}
		f.log.Warn("event feed lost; reconnecting", "err", err.Error(), "in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen holds one LISTEN connection until it fails; live reports whether it
// got as far as listening.
func (f *EventFeed) listen(ctx context.Context) (live bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, f.db.url)
	cancel()
	if err != nil {
		return false, connectError(Postgres, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return false, err
	}
	f.mu.Lock()
	close(f.up)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.up = make(chan struct{})
		f.mu.Unlock()
		f.broker.Interrupt(events.ErrInterrupted)
	}()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		var p notifyPayload
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			f.log.Warn("malformed secret event notification", "err", err.Error())
			continue
		}
		f.broker.Publish(events.Event{Type: p.Type, ProjectID: p.Project, Env: p.Env, Path: p.Path, Key: p.Key, Tags: p.Tags, Version: p.Version})
	}
}
