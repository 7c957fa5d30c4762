package main

import "github.com/lockbox-dev/lockbox/internal/dynamic"

// setWorker sets the worker's parallelism and batch sizes where given (> 0).
func setWorker(w *dynamic.Worker, parallel, batch, burst int) {
	if parallel > 0 {
		w.Parallel = parallel
	}
	if batch > 0 {
		w.Batch = batch
	}
	if burst > 0 {
		w.BurstBatch = burst
	}
}
