package dynamic

import "context"

// RevokeBatch claims up to n of a dynamic secret's due leases and revokes
// them as a drain does; it returns how many it claimed and the recording of
// their outcome (nil if recorded already), which a drain runs while it
// works on the next batch.
func (w *Worker) RevokeBatch(ctx context.Context, dsID string, n int) (int, func(), error) {
	claimed, err := w.claim(ctx, dsID, n)
	if err != nil || len(claimed) == 0 {
		return 0, nil, err
	}
	record, _ := w.revokeGroup(ctx, dsID, claimed)
	return len(claimed), record, nil
}
