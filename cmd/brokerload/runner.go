package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// plan is how much load to send and how.
type plan struct {
	concurrency int           // workers, each with at most one request outstanding
	duration    time.Duration // no request starts (closed loop) or is scheduled (open loop) after this
	requests    int64         // when > 0, stop after this many requests
	rate        float64       // requests/s for an open loop; 0 is a closed loop
}

// op is one measured operation of a scenario, done by worker w. Each
// worker calls it from one goroutine, so per-worker state needs no lock.
type op func(ctx context.Context, w int) error

// measurement is what a run of an op yields.
type measurement struct {
	ok, failed int64
	elapsed    time.Duration   // from the first start to the last completion
	latencies  []time.Duration // of successful operations, sorted
	errors     *errorTally
	// maxLag is the latest an open-loop operation started after its
	// scheduled time: large when the workers could not keep up.
	maxLag time.Duration
}

// worker is one load goroutine's own record. Keeping samples per worker,
// in a slice allocated before the run, means recording a latency takes no
// lock and usually no allocation.
type worker struct {
	samples []time.Duration
	ok      int64
	failed  int64
	maxLag  time.Duration
}

// drive runs do according to p and measures it. It returns when the
// requests are done or the duration is over and every request in flight
// has finished (each is bounded by the HTTP client's timeout), or when ctx
// is cancelled.
func drive(ctx context.Context, p plan, do op) measurement {
	workers := make([]worker, p.concurrency)
	perWorker := expectedPerWorker(p)
	for i := range workers {
		workers[i].samples = make([]time.Duration, 0, perWorker)
	}
	tally := &errorTally{}
	var issued atomic.Int64
	start := time.Now()
	deadline := start.Add(p.duration)

	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			w := &workers[i]
			if p.rate > 0 {
				openLoop(ctx, p, i, w, &issued, start, deadline, tally, do)
			} else {
				closedLoop(ctx, p, i, w, &issued, deadline, tally, do)
			}
		})
	}
	wg.Wait()

	m := measurement{elapsed: time.Since(start), errors: tally}
	parts := make([][]time.Duration, len(workers))
	for i, w := range workers {
		m.ok += w.ok
		m.failed += w.failed
		m.maxLag = max(m.maxLag, w.maxLag)
		parts[i] = w.samples
	}
	m.latencies = mergeSorted(parts)
	return m
}

// closedLoop starts a request as soon as the previous one finishes:
// throughput is whatever the broker sustains at this concurrency.
func closedLoop(ctx context.Context, p plan, id int, w *worker, issued *atomic.Int64, deadline time.Time, tally *errorTally, do op) {
	for ctx.Err() == nil {
		if p.requests > 0 && issued.Add(1) > p.requests {
			return
		}
		t0 := time.Now()
		if !t0.Before(deadline) {
			return
		}
		err := do(ctx, id)
		w.record(time.Since(t0), err, tally)
	}
}

// openLoop starts request i at start + i/rate, whatever happened to the
// earlier ones, and measures its latency from that scheduled time. When
// the broker (or the workers) fall behind, the wait for a free worker
// shows in the latency instead of silently lowering the offered load:
// the coordinated omission a closed loop suffers from.
func openLoop(ctx context.Context, p plan, id int, w *worker, issued *atomic.Int64, start, deadline time.Time, tally *errorTally, do op) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for ctx.Err() == nil {
		i := issued.Add(1) - 1
		if p.requests > 0 && i >= p.requests {
			return
		}
		at := scheduledAt(start, i, p.rate)
		if !at.Before(deadline) {
			return
		}
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		w.maxLag = max(w.maxLag, time.Since(at))
		err := do(ctx, id)
		w.record(time.Since(at), err, tally)
	}
}

// scheduledAt is the start time of the i-th request (from 0) at rate
// requests per second. It is computed from i, not by adding an interval
// repeatedly, so rounding never accumulates into drift.
func scheduledAt(start time.Time, i int64, rate float64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

func (w *worker) record(d time.Duration, err error, tally *errorTally) {
	if err != nil {
		w.failed++
		tally.add(err.Error())
		return
	}
	w.ok++
	w.samples = append(w.samples, d)
}

// expectedPerWorker sizes each worker's sample slice so that a run
// usually never grows it. A closed loop's count is unknown, so it starts
// modestly and grows.
func expectedPerWorker(p plan) int {
	var total float64
	switch {
	case p.requests > 0:
		total = float64(p.requests)
	case p.rate > 0:
		total = p.rate * p.duration.Seconds() * 1.05
	default:
		return 4096
	}
	n := int(total/float64(p.concurrency)) + 1
	return min(n, 1<<20)
}
