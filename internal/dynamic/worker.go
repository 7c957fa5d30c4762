package dynamic

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// Worker revokes due leases: expired active ones, stale creating ones and
// failed revocations whose retry time has come. One runs on every server
// process; claims in the database keep them from doing the same work twice.
//
// Dynamic secrets are worked on in parallel, up to Parallel at once, so a
// slow or unreachable target delays only its own leases. Each one's leases
// are claimed and revoked a batch at a time, in one call to its target when
// the provider can (one connection revokes many users).
type Worker struct {
	svc *Service
	log *slog.Logger
	// MaxWait bounds a sleep, so work that other nodes schedule is seen
	// within this time even without a wake-up from this node.
	MaxWait time.Duration
	// Batch is how many leases one claim takes.
	Batch int
	// BurstBatch is how many leases a claim takes while a dynamic secret's
	// backlog lasts and its target disables users (PostgreSQL's two-phase
	// revocation): after a full batch that the target disabled in one call,
	// until a batch is refused. A batch costs a claim, a call to the target
	// and a record, each a round trip and a commit, whatever its size: about
	// 9 ms on two cores with PostgreSQL beside the server; a disable costs
	// the same per user however many are live. For 10,000 leases due at
	// once on one PostgreSQL target, the p99 lag to disabled-and-recorded
	// went from 1.4 s in batches of 200 to 1.0 s in batches of 1,000
	// (BENCHMARKS.md, "Revocation bursts (issue 14, 2026-12-01 night)").
	// One-phase revocations keep to Batch: their cost per user can grow
	// with the users live on the target.
	BurstBatch int
	// Parallel is how many dynamic secrets are revoked at once.
	Parallel int
	// Claim is how long a claim keeps leases from other nodes' workers:
	// claimLength (also when unset). Until a batch's outcome is
	// recorded, its claim is extended every Claim/3 (keepClaimed): a batch
	// can take longer than one claim (a refused burst goes on in groups;
	// one by one, each lease may take ProviderTimeout), and another node
	// must not take its leases meanwhile. A node that stops, or can no
	// longer write to the database, leaves claims that end within Claim.
	Claim time.Duration
	// Starve bounds how long due cleanups (drops of disabled users) wait
	// while revocations keep the worker busy: they run when no revocation
	// does, or when none has run for this long.
	Starve time.Duration
	// Slice is how long one dynamic secret's drain keeps its slot before
	// it lets others have it: past it, the drain tries no further lease
	// and claims no further batch; what it claimed and did not try is
	// released, due at once (no attempt counted), and the secret waits for
	// a slot like any other. A target whose calls are slow without failing
	// (a member's revocation statement can sleep for just under
	// ProviderTimeout, a lease at a time) would otherwise keep a slot for
	// as long as its leases last, and eight such targets every slot of the
	// node, while other projects' leases outlive their TTL. A slot is held
	// at most Slice and one call (ProviderTimeout) longer.
	Slice time.Duration
}

// NewWorker returns the revocation worker of svc.
func NewWorker(svc *Service, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.Default()
	}
	return &Worker{svc: svc, log: log, MaxWait: time.Second, Batch: 200, BurstBatch: 1000, Parallel: 8,
		Claim: claimLength, Starve: 30 * time.Second, Slice: defaultSlice}
}

// defaultSlice is Slice unless set.
const defaultSlice = 10 * time.Second

// sliceEnd is when a drain starting now must let others have its slot.
func (w *Worker) sliceEnd() time.Time {
	if w.Slice <= 0 {
		return time.Now().Add(defaultSlice)
	}
	return time.Now().Add(w.Slice)
}

// Run works until ctx is done. It hands each dynamic secret with due leases
// to a goroutine of its own (up to Parallel), which revokes them batch after
// batch until none is due, and otherwise sleeps until the next due lease of
// a secret not being worked on, a wake-up from this node or the end of a
// secret's work, never longer than MaxWait. With nothing due it only reads.
//
// Cleanups (users of revoked leases that were disabled, waiting to be
// dropped) are worked one batch at a time by one more goroutine, after the
// revocations: when none is running, or when cleanups have waited Starve.
func (w *Worker) Run(ctx context.Context) error {
	// busy: the dynamic secrets being drained, true for those picked after
	// yielding their slot (slow ones), which may hold at most half the
	// slots. yielded: those whose last drain outlived its slice; they are
	// picked after every other due secret.
	busy, yielded := map[string]bool{}, map[string]bool{}
	slots := max(w.Parallel, 1)
	done := make(chan drained, slots) // one send per goroutine: never blocks
	dismantled := make(chan struct{}, 1)
	dismantling := false
	lastDismantle := w.svc.now().UTC() // cleanups wait for revocations from the start
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		// Close provider connection pools that have gone unused, even when no
		// provider is used again to sweep them.
		provider.SweepIdle()
		if ctx.Err() != nil {
			return nil
		}
		wait := w.MaxWait
		next, err := w.svc.store.NextDue(ctx, slices.Collect(maps.Keys(busy))...)
		now := w.svc.now().UTC()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.log.Error("lease worker", "err", err.Error())
			}
		case next.IsZero():
			clear(yielded) // none of them has a live lease
		case next.After(now):
			wait = min(wait, next.Sub(now))
		case len(busy) < slots:
			ids, slow, err := w.pick(ctx, now, busy, yielded, slots)
			if err != nil && ctx.Err() == nil {
				w.log.Error("lease worker", "err", err.Error())
			}
			for i, id := range ids {
				busy[id] = i >= len(ids)-slow
				delete(yielded, id)
				wg.Go(func() {
					done <- drained{id, w.drain(ctx, id)}
				})
			}
			if len(ids) > 0 {
				continue // what is due next, apart from these, has changed
			}
		}
		if !dismantling {
			next, err := w.svc.store.NextCleanup(ctx)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					w.log.Error("lease worker: cleanups", "err", err.Error())
				}
			case next.IsZero():
			case next.After(now):
				wait = min(wait, next.Sub(now))
			case len(busy) == 0 || now.Sub(lastDismantle) >= w.Starve:
				dismantling, lastDismantle = true, now
				wg.Go(func() {
					w.dismantle(ctx)
					dismantled <- struct{}{}
				})
			default:
				wait = min(wait, w.Starve-now.Sub(lastDismantle))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case d := <-done:
			d.free(busy, yielded)
		case <-dismantled:
			dismantling = false
		case <-w.svc.wake:
		case <-t.C:
		}
		t.Stop()
		for len(done) > 0 {
			(<-done).free(busy, yielded)
		}
		if len(dismantled) > 0 {
			<-dismantled
			dismantling = false
		}
	}
}

// drained is a drain's end: its dynamic secret, and whether it outlived
// its slice.
type drained struct {
	id      string
	yielded bool
}

// free gives back d's slot.
func (d drained) free(busy, yielded map[string]bool) {
	delete(busy, d.id)
	if d.yielded {
		yielded[d.id] = true
	}
}

// pick chooses due dynamic secrets for the free slots: first those whose
// last drain did not outlive its slice, the longest-due first; then, in
// slots still free, those that did, as long as they hold at most half the
// slots (at least one), so a few slow targets cannot take every slot from
// the others' leases. slow is how many of the picked, at the end of ids,
// are of the second kind.
func (w *Worker) pick(ctx context.Context, now time.Time, busy, yielded map[string]bool, slots int) (ids []string, slow int, err error) {
	except := slices.Collect(maps.Keys(busy))
	ids, err = w.svc.store.DueSecrets(ctx, now, append(except, slices.Collect(maps.Keys(yielded))...), slots-len(busy))
	if err != nil || len(yielded) == 0 {
		return ids, 0, err
	}
	slowBusy := 0
	for _, s := range busy {
		if s {
			slowBusy++
		}
	}
	n := min(slots-len(busy)-len(ids), max(slots/2, 1)-slowBusy)
	if n <= 0 {
		return ids, 0, nil
	}
	// Every due secret that did not yield is in ids already: the rest
	// due are yielded ones (or just became due, and wait for the next round).
	more, err := w.svc.store.DueSecrets(ctx, now, append(except, ids...), slots)
	if err != nil {
		return ids, 0, err
	}
	for _, id := range more {
		if yielded[id] && slow < n {
			ids = append(ids, id)
			slow++
		}
	}
	return ids, slow, nil
}

// dismantle claims one batch of due cleanups (all of one dynamic secret) and
// drops their users in the target; it reports how many it claimed. A
// failure is retried with backoff: the users stay disabled meanwhile.
func (w *Worker) dismantle(ctx context.Context) int {
	s := w.svc
	now := s.now().UTC()
	cs, err := s.store.ClaimCleanups(ctx, now, now.Add(claimLength), w.Batch)
	if err != nil || len(cs) == 0 {
		if err != nil && ctx.Err() == nil {
			w.log.Error("lease worker: claim cleanups", "err", err.Error())
			t := time.NewTimer(w.MaxWait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		return 0
	}
	ids := make([]string, len(cs))
	names := make([]string, len(cs))
	attempts := 0
	for i, c := range cs {
		ids[i], names[i] = c.LeaseID, c.Username
		attempts = max(attempts, c.Attempts)
	}
	dsID := cs[0].DynamicSecretID
	failed, err := s.dropUsers(ctx, dsID, names)
	dropped, kept := splitDropped(ids, names, failed)
	details := ""
	if err != nil {
		details = truncate(err.Error(), 250) + " - retrying automatically"
		w.log.Warn("dropping disabled users failed", "dynamicSecret", dsID, "users", len(failed), "of", len(names), "attempt", attempts+1, "err", details)
	}
	wctx := context.WithoutCancel(ctx)
	if ferr := s.store.FinishCleanups(wctx, dropped, true, "", time.Time{}); ferr != nil {
		w.log.Error("lease worker: record cleanups", "dynamicSecret", dsID, "err", ferr.Error())
	}
	if ferr := s.store.FinishCleanups(wctx, kept, false, details, s.now().UTC().Add(backoff(attempts+1))); ferr != nil {
		w.log.Error("lease worker: record cleanups", "dynamicSecret", dsID, "err", ferr.Error())
	}
	return len(cs)
}

// drain revokes a dynamic secret's due leases, a batch at a time, until a
// claim finds fewer than a batch. A batch's outcome is recorded while the
// next batch is claimed and revoked, one recording at a time (the groups of
// a refused burst are recorded as they go, beside it). After a full batch
// that the target disabled in one call, batches are BurstBatch, until one is
// refused: the rest of the drain keeps to Batch. Past the worker's Slice it
// stops, leaving what it did not try due; it reports whether it outlived
// its slice, stopped or not (a drain of one slow lease at a time ends with
// its claim, but its secret must wait behind the others all the same).
func (w *Worker) drain(ctx context.Context, dsID string) (yielded bool) {
	var recording sync.WaitGroup
	defer recording.Wait()
	batch, refused := w.Batch, false
	until := w.sliceEnd()
	defer func() { yielded = yielded || !time.Now().Before(until) }()
	for ctx.Err() == nil {
		if !time.Now().Before(until) {
			return true
		}
		claimed, err := w.claim(ctx, dsID, batch)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("lease worker: claim", "dynamicSecret", dsID, "err", err.Error())
				// Keep the slot a moment: Run would hand the secret straight back.
				t := time.NewTimer(w.MaxWait)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			return
		}
		if len(claimed) == 0 {
			return
		}
		record, disabled, released := w.revokeGroup(ctx, dsID, claimed, until)
		recording.Wait()
		if record != nil {
			recording.Go(record)
		}
		if released {
			return true
		}
		if len(claimed) < batch {
			return
		}
		refused = refused || record == nil
		batch = w.Batch
		if disabled && !refused {
			batch = max(w.Batch, w.BurstBatch)
		}
	}
	return false
}

// claim claims up to n of a dynamic secret's due leases, for w.Claim.
func (w *Worker) claim(ctx context.Context, dsID string, n int) ([]SealedLease, error) {
	now := w.svc.now().UTC()
	return w.svc.store.ClaimDueLeases(ctx, dsID, now, now.Add(w.claimFor()), n)
}

// claimFor is Claim, or its default when unset.
func (w *Worker) claimFor() time.Duration {
	if w.Claim > 0 {
		return w.Claim
	}
	return claimLength
}

// keepClaimed extends the claim of leases every Claim/3 until stop is
// called (or ctx is done), so that no other node takes them while this one
// works on them. Each extension moves only the claims it wrote, found by
// their end (the claim's due_at): a lease already recorded, or claimed
// since by another node or request, is left alone. It stops, with a
// warning, once the work has had all the time its provider calls may take
// (one by one, each lease's, after the batch calls), so a call that
// ignores its deadline does not hold the leases for good. stop returns
// the claims' end as last written.
func (w *Worker) keepClaimed(ctx context.Context, leases []SealedLease) (stop func() time.Time) {
	if len(leases) == 0 {
		return func() time.Time { return time.Time{} }
	}
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = l.ID
	}
	claim, from := w.claimFor(), leases[0].DueAt // one claim: one end for all
	groups := len(leases)/max(w.Batch, 1) + 1
	limit := time.Now().Add(time.Duration(len(leases)+2*groups+2)*ProviderTimeout + claim)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(claim/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if time.Now().After(limit) {
				w.log.Warn("lease worker: a batch outlasted what its target calls may take; its claims are no longer extended",
					"dynamicSecret", leases[0].DynamicSecretID, "leases", len(ids))
				return
			}
			to := w.svc.now().UTC().Add(claim)
			ectx, cancel := context.WithTimeout(ctx, claim/3)
			err := w.svc.store.ExtendClaims(ectx, ids, from, to)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					w.log.Error("lease worker: extend claims", "leases", len(ids), "err", err.Error())
				}
				continue
			}
			from = to
		}
	})
	return func() time.Time {
		close(done)
		wg.Wait()
		return from
	}
}

// claimAndRevoke claims one batch of a dynamic secret's due leases, revokes
// them and records the outcome; it reports how many it claimed.
func (w *Worker) claimAndRevoke(ctx context.Context, dsID string) (int, error) {
	claimed, err := w.claim(ctx, dsID, w.Batch)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	if record, _, _ := w.revokeGroup(ctx, dsID, claimed, w.sliceEnd()); record != nil {
		record()
	}
	return len(claimed), nil
}

// revokeGroup revokes claimed leases of one dynamic secret, keeping them
// claimed until their outcomes are recorded: all in one call to the target
// when the provider can, else (or if that fails) one by one.
// One by one, it records each outcome itself and returns nil; after a batch
// call it returns the recording of the batch's success, for the caller to
// run, and whether that call disabled the users (two-phase). Leases it has
// not tried by until are released, due at once: released says so.
func (w *Worker) revokeGroup(ctx context.Context, dsID string, leases []SealedLease, until time.Time) (record func(), disabled, released bool) {
	s := w.svc
	stop := w.keepClaimed(ctx, leases)
	ss, err := s.store.DynamicSecretByID(ctx, dsID)
	var sec Secret
	if err == nil {
		sec, err = s.open(ctx, ss, "", "")
	}
	if err != nil {
		w.revokeEach(ctx, sec, leases, err, until)
		stop()
		return nil, false, false
	}
	rec, disabled, _, left := w.revokeOpened(ctx, sec, leases, until)
	if rec == nil {
		w.release(ctx, left, stop())
		return nil, disabled, len(left) > 0
	}
	// The claims last until the outcome is recorded, however long the
	// caller waits to record it.
	return func() {
		defer stop()
		rec()
	}, disabled, false
}

// release makes claimed leases that were not tried due at once, with no
// attempt counted, once their claim (ending at end) is no longer extended.
func (w *Worker) release(ctx context.Context, leases []SealedLease, end time.Time) {
	if len(leases) == 0 {
		return
	}
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = l.ID
	}
	if err := w.svc.store.ExtendClaims(context.WithoutCancel(ctx), ids, end, w.svc.now().UTC()); err != nil {
		// The claims end on their own, at end.
		w.log.Error("lease worker: release claims", "leases", len(ids), "err", err.Error())
	}
}

// revokeOpened is revokeGroup once the dynamic secret is read and opened.
// A burst (more than Batch leases) that the target does not disable goes on
// in groups of Batch, each revoked and recorded as a batch of its own would
// be. Once the target is found unreachable (or holding a call for the whole
// ProviderTimeout), the leases not yet tried fail at once with that error
// and are retried with backoff: a target a member controls must not hold
// one of the node's few revocation slots for a timeout per lease, while
// other projects' leases wait. down is the error that found it so, if one
// did.
func (w *Worker) revokeOpened(ctx context.Context, sec Secret, leases []SealedLease, until time.Time) (record func(), disabled bool, down error, left []SealedLease) {
	p, err := w.svc.provider(sec)
	if err != nil {
		down, left = w.revokeEach(ctx, sec, leases, nil, until)
		return nil, false, down, left
	}
	names := make([]string, len(leases))
	for i, l := range leases {
		names[i] = l.Username
	}
	if d, ok := p.(provider.Disabler); ok && d.Disables() {
		pctx, cancel := context.WithTimeout(w.svc.dialCtx(ctx, p), ProviderTimeout)
		derr := d.DisableMany(pctx, names)
		cancel()
		if derr == nil {
			return func() { w.recordDisabled(context.WithoutCancel(ctx), sec, leases) }, true, nil, nil
		}
		if errors.Is(derr, provider.ErrUnreachable) {
			// Down, or one of the roles held by a lock past the timeout:
			// one lease alone tells (revokeEach), without a batch drop that
			// would wait as long.
			down, left = w.revokeEach(ctx, sec, leases, nil, until)
			return nil, false, down, left
		}
		w.log.Warn("disabling users failed; revoking in one phase", "dynamicSecret", sec.ID, "err", truncate(derr.Error(), 250))
	}
	if batch := max(w.Batch, 1); len(leases) > batch {
		for i := 0; i < len(leases); i += batch {
			if i > 0 && !time.Now().Before(until) {
				return nil, false, nil, leases[i:]
			}
			group := leases[i:min(i+batch, len(leases))]
			record, _, down, left := w.revokeOpened(ctx, sec, group, until)
			if record != nil {
				record()
			}
			if down != nil {
				w.revokeEach(ctx, sec, leases[i+len(group):], down, until)
				return nil, false, down, left
			}
			if len(left) > 0 {
				return nil, false, nil, append(left, leases[i+len(group):]...)
			}
		}
		return nil, false, nil, nil
	}
	if br, ok := p.(provider.BatchRevoker); ok && len(leases) > 1 {
		pctx, cancel := context.WithTimeout(w.svc.dialCtx(ctx, p), ProviderTimeout)
		berr := br.RevokeMany(pctx, names)
		cancel()
		if berr == nil {
			return func() { w.recordRevoked(context.WithoutCancel(ctx), sec, leases) }, false, nil, nil
		}
		w.log.Warn("batch revocation failed; revoking one by one", "dynamicSecret", sec.ID, "err", truncate(berr.Error(), 250))
	}
	down, left = w.revokeEach(ctx, sec, leases, nil, until)
	return nil, false, down, left
}

// revokeEach revokes leases one by one and records each outcome; with err
// set (the dynamic secret could not be read, or the target was found
// unreachable), each fails with it untried. Once one lease finds the
// target unreachable the rest fail with that error, untried, and that
// lease is recorded last, so that it is due last: the next attempt starts
// with another lease, and one lease whose own revocation hangs (a lock its
// user holds) cannot keep the others from ever being tried. It returns the
// error that found the target unreachable, if one did. Past until it tries
// no further lease (having tried at least one): it returns the rest, left,
// unrecorded, for the caller to release.
func (w *Worker) revokeEach(ctx context.Context, sec Secret, leases []SealedLease, err error, until time.Time) (down error, left []SealedLease) {
	var first *SealedLease
	for i, l := range leases {
		rerr := err
		if rerr == nil {
			if i > 0 && !time.Now().Before(until) {
				left = leases[i:]
				break
			}
			rerr = w.svc.revokeWith(ctx, sec, l.Lease)
			if errors.Is(rerr, provider.ErrUnreachable) {
				err, first = rerr, &leases[i]
				continue
			}
		}
		w.record(ctx, sec, l, rerr)
	}
	if first != nil {
		w.record(ctx, sec, *first, err)
	}
	if errors.Is(err, provider.ErrUnreachable) {
		return err, left
	}
	return nil, left
}

// recordRevoked records a batch of leases revoked, with their audit events,
// and feeds the metrics. Should it fail, the claims expire and the leases
// are revoked again (revocation is idempotent).
func (w *Worker) recordRevoked(ctx context.Context, sec Secret, leases []SealedLease) {
	if err := w.svc.recordRevoked(ctx, sec, leases); err != nil {
		w.log.Error("lease worker: record outcomes", "dynamicSecret", sec.ID, "err", err.Error())
	}
}

// recordRevoked records claimed leases revoked in one transaction, each
// with its audit event, and feeds the metrics with those it marked (one
// revoked meanwhile by another path was counted there).
func (s *Service) recordRevoked(ctx context.Context, sec Secret, leases []SealedLease) error {
	ids := make([]string, len(leases))
	evs := make([]audit.Event, len(leases))
	for i, l := range leases {
		ids[i], evs[i] = l.ID, revokeEvent(sec, l.Lease, "")
	}
	marked, err := s.store.RevokedMany(ctx, ids, evs)
	if err != nil {
		return err
	}
	s.countRevoked(leases, marked)
	return nil
}

// countRevoked feeds the metrics with the revocations of those of leases
// whose outcome was recorded (marked).
func (s *Service) countRevoked(leases []SealedLease, marked []string) {
	if s.metrics == nil {
		return
	}
	done := s.now().UTC()
	for _, l := range leases {
		if slices.Contains(marked, l.ID) {
			s.metrics.Revoked(true, max(0, done.Sub(l.ExpireAt)))
		}
	}
}

// recordDisabled records a batch of leases revoked whose users were
// disabled, queues the users' cleanups in the same transaction, and feeds
// the metrics. Should it fail, the claims expire and the leases are
// disabled again (disabling is idempotent).
func (w *Worker) recordDisabled(ctx context.Context, sec Secret, leases []SealedLease) {
	s := w.svc
	ids := make([]string, len(leases))
	evs := make([]audit.Event, len(leases))
	for i, l := range leases {
		ids[i], evs[i] = l.ID, revokeEvent(sec, l.Lease, "")
		evs[i].Metadata["cleanup"] = "pending"
	}
	marked, err := s.store.DisabledMany(ctx, ids, evs)
	if err != nil {
		w.log.Error("lease worker: record outcomes", "dynamicSecret", sec.ID, "err", err.Error())
		return
	}
	s.countRevoked(leases, marked)
	s.wakeWorker() // the cleanups are due
}

// record stores one revocation outcome and feeds the metrics; sec is the
// lease's dynamic secret as the group loaded it (zero if it could not be).
func (w *Worker) record(ctx context.Context, sec Secret, l SealedLease, rerr error) {
	s := w.svc
	details, ok := "", rerr == nil
	switch {
	case errors.Is(rerr, provider.ErrNotOwned):
		// Not lockbox's to remove: the lease ends, the principal stays.
		details, ok = "not revoked: "+truncate(s.shown(ctx, "revoke lease", rerr), 250), true
	case rerr != nil:
		details = truncate(s.shown(ctx, "revoke lease", rerr), 250) + " - retrying automatically"
	}
	done := s.now().UTC()
	ev := revokeEvent(sec, l.Lease, details)
	recorded, err := s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, ok, details, done.Add(backoff(l.Attempts+1)), ev)
	if err != nil {
		w.log.Error("lease worker: record outcome", "lease", l.ID, "err", err.Error())
		return
	}
	if !recorded {
		return // revoked meanwhile by another path, which counted and logged it
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

// Tick claims and processes one batch of due leases of each dynamic secret
// that has some (up to Parallel, in parallel), then one batch of due
// cleanups; it reports how many leases.
// With nothing due it only reads: an idle server makes no database write.
func (w *Worker) Tick(ctx context.Context) (int, error) {
	s := w.svc
	now := s.now().UTC()
	if next, err := s.store.NextCleanup(ctx); err != nil {
		return 0, err
	} else if !next.IsZero() && !next.After(now) {
		defer w.dismantle(ctx)
	}
	if next, err := s.store.NextDue(ctx); err != nil || next.IsZero() || next.After(now) {
		return 0, err
	}
	ids, err := s.store.DueSecrets(ctx, now, nil, max(w.Parallel, 1))
	if err != nil {
		return 0, err
	}
	var total atomic.Int64
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			n, err := w.claimAndRevoke(ctx, id)
			total.Add(int64(n))
			errs[i] = err
		})
	}
	wg.Wait()
	return int(total.Load()), errors.Join(errs...)
}
