package main

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestScheduledAt_IsComputedFromTheIndex(t *testing.T) {
	start := time.Unix(1000, 0)
	if got := scheduledAt(start, 3, 4); !got.Equal(start.Add(750 * time.Millisecond)) {
		t.Errorf("scheduledAt(3, 4/s) = +%s, want +750ms", got.Sub(start))
	}
	// At 3 requests/s an interval of 333.33…ms added 3,000,000 times
	// would drift; from the index, request 3e6 is at exactly 1e6 s.
	if got := scheduledAt(start, 3_000_000, 3); !got.Equal(start.Add(1_000_000 * time.Second)) {
		t.Errorf("scheduledAt(3e6, 3/s) = +%s, want +1e6s", got.Sub(start))
	}
}

func TestOpenLoop_StartsRequestsOnSchedule(t *testing.T) {
	const rate, d = 200.0, 250 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	before := time.Now()
	m := drive(context.Background(), plan{concurrency: 4, duration: d, rate: rate}, func(context.Context, int) error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil
	})
	// Requests 0…49 are scheduled before the deadline, 50 at it.
	if want := int64(rate * d.Seconds()); m.ok != want || int64(len(starts)) != want {
		t.Fatalf("ok = %d, calls = %d; want %d", m.ok, len(starts), want)
	}
	// No request may start early, and none should start much after its
	// time when the work takes nothing.
	first, last := starts[0], starts[0]
	for _, s := range starts {
		if s.Before(first) {
			first = s
		}
		if s.After(last) {
			last = s
		}
	}
	if spread := last.Sub(first); spread < 240*time.Millisecond || spread > 400*time.Millisecond {
		t.Errorf("starts spread over %s, want about 245ms (49 intervals of 5ms)", spread)
	}
	if first.Before(before) {
		t.Error("a request started before the run")
	}
	if m.maxLag > 100*time.Millisecond {
		t.Errorf("max lag %s behind schedule with instant work", m.maxLag)
	}
}

func TestOpenLoop_LatencyCountsFromScheduledTime(t *testing.T) {
	// One worker, a request every 5 ms, each taking 20 ms: the broker
	// (here, the op) cannot keep up, and later requests wait longer and
	// longer for the worker. A closed loop would report 20 ms for every
	// one; the open loop must report the wait.
	m := drive(context.Background(), plan{concurrency: 1, duration: 100 * time.Millisecond, rate: 200}, func(context.Context, int) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	if m.ok != 20 {
		t.Fatalf("ok = %d, want 20", m.ok)
	}
	// The 20th request is scheduled at 95 ms and ends near 400 ms.
	if worst := percentile(m.latencies, 100); worst < 250*time.Millisecond {
		t.Errorf("max latency %s, want > 250ms: queueing behind the schedule is hidden", worst)
	}
	if best := percentile(m.latencies, 0); best < 20*time.Millisecond {
		t.Errorf("min latency %s, shorter than the work itself", best)
	}
}

func TestClosedLoop_StopsAtRequestCount(t *testing.T) {
	m := drive(context.Background(), plan{concurrency: 3, duration: time.Minute, requests: 100}, func(_ context.Context, w int) error {
		if w == 0 {
			return errors.New("worker 0 fails")
		}
		return nil
	})
	if m.ok+m.failed != 100 {
		t.Errorf("ok %d + failed %d != 100", m.ok, m.failed)
	}
	if m.failed > 0 && m.errors.first(1)[0] != (errorCount{"worker 0 fails", m.failed}) {
		t.Errorf("errors = %v", m.errors.first(5))
	}
	if int64(len(m.latencies)) != m.ok {
		t.Errorf("%d latencies for %d successes: errors must not be in the percentiles", len(m.latencies), m.ok)
	}
}

func TestClosedLoop_StopsAtDuration(t *testing.T) {
	start := time.Now()
	drive(context.Background(), plan{concurrency: 2, duration: 50 * time.Millisecond}, func(context.Context, int) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	if took := time.Since(start); took > time.Second {
		t.Errorf("a 50ms run took %s", took)
	}
}
