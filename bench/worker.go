package main

import "github.com/lockbox-dev/lockbox/internal/dynamic"

// setWorker sets the worker's parallelism and batch size where given (> 0).
func setWorker(w *dynamic.Worker, parallel, batch int) {
	if parallel > 0 {
		w.Parallel = parallel
	}
	if batch > 0 {
		w.Batch = batch
	}
}
