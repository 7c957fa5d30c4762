package rotation

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/poll"
)

// Worker runs due rotations: scheduled ones, failed ones whose retry time
// has come and runs a dead node left unfinished. One runs on every server
// process; claims in the database keep two nodes from running one rotation.
type Worker struct {
	svc *Service
	log *slog.Logger
	// MaxWait bounds a sleep, so rotations other nodes schedule are seen.
	MaxWait time.Duration
	// Batch is how many rotations one claim takes (run in parallel).
	Batch int
}

// NewWorker returns the rotation worker of svc.
func NewWorker(svc *Service, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.Default()
	}
	return &Worker{svc: svc, log: log, MaxWait: 5 * time.Second, Batch: 4}
}

// Run works until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	poll.Run(ctx, "rotation worker", w.log, w.svc.now, w.MaxWait, w.tick)
	return nil
}

// Tick claims the rotations due now (up to Batch) and runs them; it
// reports how many it ran. With nothing due it only reads.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	n, _, err := w.tick(ctx)
	return n, err
}

// tick is Tick that also returns, when nothing was due, the next due time
// it read (zero: none), so the idle loop reads it once.
func (w *Worker) tick(ctx context.Context) (int, time.Time, error) {
	s := w.svc
	now := s.now().UTC()
	if next, err := s.store.NextRotationDue(ctx); err != nil || next.IsZero() || next.After(now) {
		return 0, next, err
	}
	claimed, err := s.store.ClaimDueRotations(ctx, now, now.Add(s.ClaimTTL), max(w.Batch, 1))
	if err != nil {
		return 0, time.Time{}, err
	}
	var wg sync.WaitGroup
	for _, st := range claimed {
		wg.Go(func() {
			// Failures are recorded on the rotation and audited by run.
			_ = s.run(ctx, authz.Actor{Kind: authz.ActorPlatform, OrgID: st.OrgID}, st, false)
		})
	}
	wg.Wait()
	return len(claimed), time.Time{}, nil
}
