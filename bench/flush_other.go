//go:build !linux

package main

import (
	"errors"
	"time"
)

func runFlush(string, time.Duration) ([]flushResult, error) {
	return nil, errors.New("the flush scenario reads /proc/stat and calls fdatasync: Linux only")
}
