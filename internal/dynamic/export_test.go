package dynamic

import (
	"context"
	"time"
)

// RevokeBatch claims up to n of a dynamic secret's due leases and revokes
// them as a drain does; it returns how many it claimed and the recording of
// their outcome (nil if recorded already), which a drain runs while it
// works on the next batch.
func (w *Worker) RevokeBatch(ctx context.Context, dsID string, n int) (int, func(), error) {
	claimed, err := w.claim(ctx, dsID, n)
	if err != nil || len(claimed) == 0 {
		return 0, nil, err
	}
	record, _, _ := w.revokeGroup(ctx, dsID, claimed, time.Now().Add(time.Hour))
	return len(claimed), record, nil
}

// RevokeBatchUntil is RevokeBatch with the end of the drain's slice: leases
// not tried by then are released.
func (w *Worker) RevokeBatchUntil(ctx context.Context, dsID string, n int, until time.Time) (int, func(), bool, error) {
	claimed, err := w.claim(ctx, dsID, n)
	if err != nil || len(claimed) == 0 {
		return 0, nil, false, err
	}
	record, _, released := w.revokeGroup(ctx, dsID, claimed, until)
	return len(claimed), record, released, nil
}

// Pick is the worker's choice of due dynamic secrets for its free slots.
func (w *Worker) Pick(ctx context.Context, busy, yielded map[string]bool, slots int) ([]string, int, error) {
	return w.pick(ctx, w.svc.now().UTC(), busy, yielded, slots)
}

// Drain is the worker's drain of one dynamic secret; it reports whether the
// drain outlived its slice.
func (w *Worker) Drain(ctx context.Context, dsID string) bool { return w.drain(ctx, dsID) }
