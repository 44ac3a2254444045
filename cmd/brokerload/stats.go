package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. It never interpolates, so the answer is always a latency
// that was actually observed. p <= 0 gives the minimum; an empty slice 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// mergeSorted concatenates the workers' samples and sorts them.
func mergeSorted(parts [][]time.Duration) []time.Duration {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	return all
}

// maxDistinctErrors bounds the distinct messages an errorTally keeps, so
// a broker failing with a different message per request cannot make the
// tool's memory grow without limit.
const maxDistinctErrors = 50

// errorTally counts errors by message, remembering the order in which
// distinct messages first appeared. It is safe for concurrent use; the
// lock is taken only on errors, so a healthy run never contends on it.
type errorTally struct {
	mu     sync.Mutex
	counts map[string]int64
	order  []string
	other  int64 // errors beyond maxDistinctErrors distinct messages
}

func (t *errorTally) add(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int64{}
	}
	if _, seen := t.counts[msg]; !seen {
		if len(t.order) >= maxDistinctErrors {
			t.other++
			return
		}
		t.order = append(t.order, msg)
	}
	t.counts[msg]++
}

// errorCount is one distinct error message and how often it happened.
type errorCount struct {
	Message string
	Count   int64
}

// first returns up to n distinct messages in the order they first
// appeared, with their counts.
func (t *errorTally) first(n int) []errorCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []errorCount
	for _, m := range t.order[:min(n, len(t.order))] {
		out = append(out, errorCount{m, t.counts[m]})
	}
	return out
}

func (t *errorTally) distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.order)
	if t.other > 0 {
		n++ // at least one more
	}
	return n
}
