//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// flushBlock is what one flush writes: SQLite's page.
const flushBlock = 4096

// runFlush measures what a durable commit costs on the disk holding dir,
// one writer at a time, for d in each of two ways: 4 KiB appended to a
// growing file and fdatasync'd (the size changes, so the file system
// commits its journal too), and 4 KiB overwriting a file written before
// (what SQLite's write-ahead log does once it has restarted). Run it on a
// quiet machine: the CPU column counts every process. A read that
// is answered after its audit event is durable waits for one such flush
// per group commit, and the CPU a flush costs is taken from the cores that
// serve the reads (BENCHMARKS.md, "Read path on SQLite").
func runFlush(dir string, d time.Duration) ([]flushResult, error) {
	tmp, err := os.MkdirTemp(dir, "lockbox-flush-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var out []flushResult
	for _, mode := range []string{"append", "overwrite"} {
		r, err := flushRun(filepath.Join(tmp, mode), mode == "overwrite", d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func flushRun(path string, overwrite bool, d time.Duration) (flushResult, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return flushResult{}, err
	}
	defer f.Close()
	block := make([]byte, flushBlock)
	for i := range block {
		block[i] = byte(i)
	}
	// The overwritten file: 4 MiB written and made durable first, then
	// overwritten round and round, as SQLite's log of 1,000 pages is.
	const span = 1000
	if overwrite {
		if _, err := f.WriteAt(make([]byte, span*flushBlock), 0); err != nil {
			return flushResult{}, err
		}
		if err := f.Sync(); err != nil {
			return flushResult{}, err
		}
	}
	busy0, total0, err := machineCPU()
	if err != nil {
		return flushResult{}, err
	}
	var lat []time.Duration
	began := time.Now()
	for i := int64(0); time.Since(began) < d; i++ {
		t := time.Now()
		off := i * flushBlock // appended: the file grows
		if overwrite {
			off = (i % span) * flushBlock
		}
		if _, err := f.WriteAt(block, off); err != nil {
			return flushResult{}, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return flushResult{}, err
		}
		lat = append(lat, time.Since(t))
	}
	elapsed := time.Since(began)
	busy1, total1, err := machineCPU()
	if err != nil {
		return flushResult{}, err
	}
	slices.Sort(lat)
	n := len(lat)
	mode := "append"
	if overwrite {
		mode = "overwrite"
	}
	// The share of all cores busy during the run, times the cores' time.
	cores := float64(len(cpuLines()))
	cpu := float64(busy1-busy0) / float64(total1-total0) * elapsed.Seconds() * cores
	return flushResult{Mode: mode, Flushes: n, PerSecond: float64(n) / elapsed.Seconds(),
		P50us: us(lat[n/2]), P99us: us(lat[n*99/100]), CPUus: cpu / float64(n) * 1e6}, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// machineCPU reads the busy and total jiffies of all cores (/proc/stat's
// first line; idle and iowait are not busy).
func machineCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	for i, s := range fields[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// cpuLines returns /proc/stat's per-core lines (cpu0, cpu1, …).
func cpuLines() []string {
	b, _ := os.ReadFile("/proc/stat")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "cpu") && !strings.HasPrefix(l, "cpu ") {
			out = append(out, l)
		}
	}
	return out
}
