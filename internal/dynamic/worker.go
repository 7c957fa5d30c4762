package dynamic

import (
	"context"
	"errors"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"log/slog"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
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
	return &Worker{svc: svc, log: log, MaxWait: time.Second, Batch: 200}
}

// Run works until ctx is done. It sleeps until the next due lease (or a
// wake-up from this node), never longer than MaxWait.
func (w *Worker) Run(ctx context.Context) error {
	for {
		n, idle, err := w.tick(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("lease worker", "err", err.Error())
		}
		// Close provider connection pools that have gone unused, even when no
		// provider is used again to sweep them.
		provider.SweepIdle()
		if ctx.Err() != nil {
			return nil
		}
		wait := w.MaxWait
		if n < w.Batch {
			next := idle.next
			if !idle.known { // a claim ran: what is due next has changed
				next, _ = w.svc.store.NextDue(ctx)
			}
			if !next.IsZero() {
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

func (w *Worker) revokeGroup(ctx context.Context, dsID string, leases []SealedLease) {
	s := w.svc
	ss, err := s.store.DynamicSecretByID(ctx, dsID)
	var sec Secret
	if err == nil {
		sec, err = s.open(ctx, ss, "", "")
	}
	if err == nil && len(leases) > 1 {
		if p, perr := s.provider(sec); perr == nil {
			if br, ok := p.(provider.BatchRevoker); ok {
				names := make([]string, len(leases))
				for i, l := range leases {
					names[i] = l.Username
				}
				pctx, cancel := context.WithTimeout(ctx, ProviderTimeout)
				berr := br.RevokeMany(pctx, names)
				cancel()
				if berr == nil {
					ids := make([]string, len(leases))
					for i, l := range leases {
						ids[i] = l.ID
					}
					evs := make([]audit.Event, len(leases))
					for i, l := range leases {
						evs[i] = revokeEvent(sec, l.Lease, "")
					}
					if err := s.store.RevokedMany(context.WithoutCancel(ctx), ids, evs...); err != nil {
						w.log.Error("lease worker: record outcomes", "err", err.Error())
						return
					}
					done := s.now().UTC()
					for _, l := range leases {
						if s.metrics != nil {
							s.metrics.Revoked(true, max(0, done.Sub(l.ExpireAt)))
						}
					}
					return
				}
				w.log.Warn("batch revocation failed; revoking one by one", "dynamicSecret", dsID, "err", truncate(berr.Error(), 250))
			}
		}
	}
	for _, l := range leases {
		rerr := err
		if rerr == nil {
			rerr = s.revokeWith(ctx, sec, l.Lease)
		}
		w.record(ctx, sec, l, rerr)
	}
}

// record stores one revocation outcome and feeds the metrics; sec is the
// lease's dynamic secret as the group loaded it (zero if it could not be).
func (w *Worker) record(ctx context.Context, sec Secret, l SealedLease, rerr error) {
	s := w.svc
	details, ok := "", rerr == nil
	switch {
	case errors.Is(rerr, provider.ErrNotOwned):
		// Not lockbox's to remove: the lease ends, the principal stays.
		details, ok = "not revoked: "+truncate(rerr.Error(), 250), true
	case rerr != nil:
		details = truncate(rerr.Error(), 250) + " - retrying automatically"
	}
	done := s.now().UTC()
	ev := revokeEvent(sec, l.Lease, details)
	if err := s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, ok, details, done.Add(backoff(l.Attempts+1)), ev); err != nil {
		w.log.Error("lease worker: record outcome", "lease", l.ID, "err", err.Error())
		return
	}
	if s.metrics != nil {
		lag := time.Duration(0)
		if l.ExpireAt.Before(done) {
			lag = done.Sub(l.ExpireAt)
		}
		s.metrics.Revoked(rerr == nil, lag)
	}
	if rerr != nil {
		w.log.Warn("lease revocation failed", "lease", l.ID, "attempt", l.Attempts+1, "err", details)
	}
}

// revokeEvent is the audit event of the worker's revocation of a lease and
// its outcome; failed is empty on success.
func revokeEvent(sec Secret, l Lease, failed string) audit.Event {
	if sec.ID == "" {
		sec.ID, sec.ProjectID = l.DynamicSecretID, l.ProjectID
	}
	ev := leaseEvent(authz.Actor{}, "revoke-dynamic-secret-lease", sec, l)
	ev.Metadata["outcome"] = "revoked"
	if failed != "" {
		ev.Metadata["outcome"], ev.Metadata["reason"] = "failed", failed
	}
	return ev
}

// Tick claims and processes one batch of due leases; it reports how many.
// With nothing due it only reads: an idle server makes no database write.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	n, _, err := w.tick(ctx)
	return n, err
}

// nextDue is when the next lease is due (zero: none), if a tick knows it.
type nextDue struct {
	next  time.Time
	known bool
}

// tick is Tick; when nothing was due it also reports when the next lease is,
// which Run waits for without reading it again.
func (w *Worker) tick(ctx context.Context) (int, nextDue, error) {
	s := w.svc
	now := s.now().UTC()
	if next, err := s.store.NextDue(ctx); err == nil && (next.IsZero() || next.After(now)) {
		return 0, nextDue{next, true}, nil
	}
	claimed, err := s.store.ClaimDueLeases(ctx, now, now.Add(ProviderTimeout+10*time.Second), w.Batch)
	if err != nil {
		return 0, nextDue{}, err
	}
	// Group by dynamic secret so a provider that can revoke many credentials
	// in one round trip does so; any failure falls back to one by one.
	groups := map[string][]SealedLease{}
	var order []string
	for _, l := range claimed {
		if _, ok := groups[l.DynamicSecretID]; !ok {
			order = append(order, l.DynamicSecretID)
		}
		groups[l.DynamicSecretID] = append(groups[l.DynamicSecretID], l)
	}
	for _, id := range order {
		w.revokeGroup(ctx, id, groups[id])
	}
	return len(claimed), nextDue{}, nil
}
