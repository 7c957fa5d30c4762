package main

import (
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// A short run of the mixed scenario with the server SIGKILLed half-way through
// the first round: no 5xx and no failed request outside the restart window,
// every acknowledged write readable afterwards, every read answered 200
// (before the kill too) in the audit log afterwards, and no goroutine growth
// between the two rounds. (BENCHMARKS.md has the 64-client, 60-second runs.)
func TestMixedLoadSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a server process")
	}
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			if d == store.Postgres {
				storetest.RequirePG(t)
			}
			rs, err := runMixed(string(d), "", "", 16, 4*time.Second, 2, "kill")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				t.Logf("round %d: %.0f ok/s, %d writes, %d restart-window errors, restart %.2fs, %d acked, %d lost, %d reads answered (%d before the restart), %d unaudited, %.0f goroutines, %.1f MB heap",
					r.Round, r.PerSecond, r.Writes, r.RestartWindowErrors, r.RestartSeconds, r.AckedWrites, r.LostWrites, r.AckedReads, r.ReadsBeforeRestart,
					r.UnauditedReads, r.Goroutines, r.HeapInuseMB)
				if r.Errors5xx != 0 || r.ErrorsOther != 0 {
					t.Errorf("round %d: %d 5xx and %d other errors outside the restart window: %v", r.Round, r.Errors5xx, r.ErrorsOther, r.ErrorKinds)
				}
				if r.LostWrites != 0 {
					t.Errorf("round %d: %d of %d acknowledged writes lost", r.Round, r.LostWrites, r.AckedWrites)
				}
				if r.Writes == 0 || r.AckedWrites == 0 || r.Logins == 0 {
					t.Errorf("round %d did no writes or logins: %+v", r.Round, r)
				}
				if r.UnauditedReads != 0 {
					t.Errorf("round %d: %d of %d reads answered 200 have no audit event", r.Round, r.UnauditedReads, r.AckedReads)
				}
				if r.AckedReads == 0 {
					t.Errorf("round %d answered no reads", r.Round)
				}
			}
			if rs[0].RestartSeconds == 0 {
				t.Error("no restart happened")
			}
			if rs[0].ReadsBeforeRestart == 0 {
				t.Error("no read was answered before the restart")
			}
			if rs[1].Goroutines > rs[0].Goroutines+5 {
				t.Errorf("goroutines grew between rounds: %.0f -> %.0f", rs[0].Goroutines, rs[1].Goroutines)
			}
		})
	}
}
