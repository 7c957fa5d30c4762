package store

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// groupTimeout bounds one group's commit: a stuck database fails the group's
// callers instead of holding them, and Close, forever.
const groupTimeout = 30 * time.Second

// errGroupClosed answers a request queued after Close began.
var errGroupClosed = errors.New("database closed")

// committer writes the requests of concurrent callers in groups, one
// transaction per group, from one goroutine of its own. A caller queues its
// request and waits; the writer takes every queued request (oldest first, up
// to max), commits them together, answers them and takes the next group at
// once. A request that finds the writer idle is written straight away,
// waiting for no company; requests arriving while a group commits form the
// next one.
//
// The writer does nothing but commit, so the next group starts as soon as
// the previous one is durable: no hand-over to a request goroutine that has
// to be scheduled first, and no answered request's own work (writing its
// response) in front of the next commit. Audit events and Universal Auth
// logins each have one (auditgroup.go, login.go).
type committer[R any] struct {
	max   int
	write func(ctx context.Context, group []*R) // sets each request's outcome
	fail  func(r *R, err error)                 // sets an outcome when write did not finish

	mu      sync.Mutex
	wake    sync.Cond       // on mu: the queue is not empty, or close began
	queue   []*groupCall[R] // not yet taken, oldest first
	idle    int             // writers waiting on wake
	busy    int             // writers holding a group
	closed  bool
	started bool
	exited  sync.WaitGroup
	commits atomic.Int64 // groups written (tests read it)
}

type groupCall[R any] struct {
	req  *R
	done chan struct{}
}

// start runs writers goroutines until close, each taking the next group as
// soon as it is free (every committer runs one today: SQLite has a single
// writer, logins commit in arrival order, and on PostgreSQL one writer's
// bigger groups beat several writers' smaller ones: auditWriters). write
// sets each request's outcome; fail sets one when write panicked or the
// committer is closed.
func (c *committer[R]) start(writers, max int, write func(context.Context, []*R), fail func(*R, error)) {
	c.max, c.write, c.fail = max, write, fail
	c.wake.L = &c.mu
	c.started = true
	for range writers {
		c.exited.Go(c.run)
	}
}

// do queues r and returns once its group is committed (or failed). The
// commit does not end with the caller's context: a request whose client has
// gone still has its write made, and the group's other requests are not
// failed by it.
func (c *committer[R]) do(r *R) {
	call := &groupCall[R]{req: r, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed || !c.started {
		c.mu.Unlock()
		c.fail(r, errGroupClosed)
		return
	}
	c.queue = append(c.queue, call)
	if c.idle > 0 {
		c.wake.Signal()
	}
	c.mu.Unlock()
	<-call.done
}

func (c *committer[R]) run() {
	var calls []*groupCall[R]
	var group []*R
	c.mu.Lock()
	for {
		for len(c.queue) == 0 {
			if c.closed {
				c.mu.Unlock()
				return
			}
			c.idle++
			c.wake.Wait()
			c.idle--
		}
		n := min(len(c.queue), c.max)
		calls = append(calls[:0], c.queue[:n]...)
		clear(c.queue[:n])
		c.queue = c.queue[n:]
		if len(c.queue) == 0 {
			c.queue = nil
		}
		c.busy++
		c.mu.Unlock()

		group = group[:0]
		for _, call := range calls {
			group = append(group, call.req)
		}
		c.commit(group)
		c.commits.Add(1)
		for _, call := range calls {
			close(call.done)
		}
		clear(calls)
		clear(group)
		c.mu.Lock()
		c.busy--
	}
}

// commit writes one group; a panic fails the group's requests instead of
// the process, and the writer goes on with the next group.
func (c *committer[R]) commit(group []*R) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			slog.Error("group commit panicked", "stack", string(debug.Stack()))
			for _, r := range group {
				c.fail(r, errGroupAborted)
			}
		}
	}()
	c.write(ctx, group)
}

var errGroupAborted = errors.New("group commit did not finish")

// close refuses new requests and waits until the queued ones are written.
func (c *committer[R]) close() {
	c.mu.Lock()
	c.closed = true
	c.wake.Broadcast()
	c.mu.Unlock()
	c.exited.Wait()
}

// state reports the requests waiting for a group, the groups being written
// and whether close has begun (tests read it).
func (c *committer[R]) state() (queued, writing int, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue), c.busy, c.closed
}
