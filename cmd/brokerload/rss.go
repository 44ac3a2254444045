package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// readRSS returns a process's resident set size in bytes, from the VmRSS
// line of /proc/<pid>/status.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("resident memory: %w", err)
	}
	return parseVmRSS(data)
}

func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("resident memory: unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("resident memory: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("resident memory: no VmRSS line")
}

// rssSampler records the resident memory of a process while a scenario
// runs, reading it every interval.
type rssSampler struct {
	pid  int
	stop context.CancelFunc
	done sync.WaitGroup
	use  rssUse
	err  error
}

// rssUse is what a sampler saw, in bytes: the first and last samples, so
// that a long run shows whether memory grew, and the peak. -1 when not
// sampled.
type rssUse struct{ first, last, peak int64 }

// sampleRSS starts sampling pid; pid 0 samples nothing.
func sampleRSS(ctx context.Context, pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{pid: pid}
	if pid == 0 {
		s.stop = func() {}
		return s
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.done.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				s.sample() // the end of the run counts too
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *rssSampler) sample() {
	rss, err := readRSS(s.pid)
	if err != nil {
		s.err = err
		return
	}
	if s.use.first == 0 {
		s.use.first = rss
	}
	s.use.last = rss
	s.use.peak = max(s.use.peak, rss)
}

// finish stops sampling and returns what it saw.
func (s *rssSampler) finish() (rssUse, error) {
	s.stop()
	s.done.Wait()
	if s.pid == 0 || s.use.peak == 0 {
		return rssUse{-1, -1, -1}, s.err
	}
	return s.use, s.err
}
