package dynamic

import (
	"context"
	"log/slog"
	"time"
)

// Worker revokes due leases: expired active ones, stale creating ones and
// failed revocations whose retry time has come. One runs on every server
// process; claims in the database keep them from doing the same work twice.
type Worker struct {
	svc *Service
	log *slog.Logger
	// MaxWait bounds a sleep, so work that other nodes schedule is seen
	// within this time even without a wake-up from this node.
	MaxWait time.Duration
	// Batch is how many leases one claim takes.
	Batch int
}

// NewWorker returns the revocation worker of svc.
func NewWorker(svc *Service, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.Default()
	}
	return &Worker{svc: svc, log: log, MaxWait: time.Second, Batch: 50}
}

// Run works until ctx is done. It sleeps until the next due lease (or a
// wake-up from this node), never longer than MaxWait.
func (w *Worker) Run(ctx context.Context) error {
	for {
		n, err := w.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("lease worker", "err", err.Error())
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := w.MaxWait
		if n < w.Batch {
			if next, err := w.svc.store.NextDue(ctx); err == nil && !next.IsZero() {
				if d := time.Until(next); d < wait {
					wait = d
				}
			}
		} else {
			wait = 0
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.svc.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Tick claims and processes one batch of due leases; it reports how many.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	s := w.svc
	now := s.now().UTC()
	claimed, err := s.store.ClaimDueLeases(ctx, now, now.Add(ProviderTimeout+10*time.Second), w.Batch)
	if err != nil {
		return 0, err
	}
	for _, l := range claimed {
		ss, err := s.store.DynamicSecretByID(ctx, l.DynamicSecretID)
		if err != nil {
			w.log.Error("lease worker: dynamic secret", "lease", l.ID, "err", err.Error())
			continue
		}
		sec, err := s.open(ctx, ss, "", "")
		var rerr error
		if err != nil {
			rerr = err
		} else {
			rerr = s.revokeWith(ctx, sec, l.Lease)
		}
		details := ""
		if rerr != nil {
			details = truncate(rerr.Error(), 250) + " - retrying automatically"
		}
		done := s.now().UTC()
		if err := s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, rerr == nil, details, done.Add(backoff(l.Attempts+1))); err != nil {
			w.log.Error("lease worker: record outcome", "lease", l.ID, "err", err.Error())
			continue
		}
		lag := time.Duration(0)
		if l.Status == Active || l.ExpireAt.Before(done) {
			lag = done.Sub(l.ExpireAt)
		}
		if s.metrics != nil {
			s.metrics.Revoked(rerr == nil, lag)
		}
		if rerr != nil {
			w.log.Warn("lease revocation failed", "lease", l.ID, "attempt", l.Attempts+1, "err", details)
		}
	}
	return len(claimed), nil
}
