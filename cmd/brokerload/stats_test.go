package main

import (
	"fmt"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile_NearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1ms … 100ms
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 95, 95 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 99.5, 100 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0, time.Millisecond},
		// Nearest rank never interpolates: with 4 samples p50 is the
		// 2nd, p51 the 3rd, p99 the 4th.
		{ms(10, 20, 30, 40), 50, 20 * time.Millisecond},
		{ms(10, 20, 30, 40), 51, 30 * time.Millisecond},
		{ms(10, 20, 30, 40), 99, 40 * time.Millisecond},
		// A single slow request out of ten is the p95 and the p99.
		{ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), 90, time.Millisecond},
		{ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), 95, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d/p%g", len(tt.sorted), tt.p), func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p%g) = %s, want %s", tt.p, got, tt.want)
			}
		})
	}
}

func TestMergeSorted_SortsAcrossWorkers(t *testing.T) {
	got := mergeSorted([][]time.Duration{ms(5, 1), nil, ms(3, 4, 2)})
	want := ms(1, 2, 3, 4, 5)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("mergeSorted = %v, want %v", got, want)
	}
}

func TestErrorTally_KeepsFirstDistinctInOrderAndIsBounded(t *testing.T) {
	var tally errorTally
	tally.add("b")
	tally.add("a")
	tally.add("b")
	for i := range maxDistinctErrors + 10 {
		tally.add(fmt.Sprint("e", i))
	}
	first := tally.first(2)
	if len(first) != 2 || first[0] != (errorCount{"b", 2}) || first[1] != (errorCount{"a", 1}) {
		t.Errorf("first(2) = %v, want [{b 2} {a 1}]", first)
	}
	if d := tally.distinct(); d != maxDistinctErrors+1 {
		t.Errorf("distinct() = %d, want %d (the cap, plus one for the rest)", d, maxDistinctErrors+1)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := []byte("Name:\tbroker\nVmPeak:\t  999 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n")
	got, err := parseVmRSS(status)
	if err != nil || got != 50<<20 {
		t.Errorf("parseVmRSS = %d, %v; want %d", got, err, 50<<20)
	}
	if _, err := parseVmRSS([]byte("Name:\tkthread\n")); err == nil {
		t.Error("parseVmRSS without a VmRSS line: no error")
	}
}

func TestFmtLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "-",
		850 * time.Microsecond:   "850µs",
		1234 * time.Microsecond:  "1.23ms",
		12345 * time.Microsecond: "12.3ms",
		1500 * time.Millisecond:  "1.50s",
	} {
		if got := fmtLatency(d); got != want {
			t.Errorf("fmtLatency(%s) = %q, want %q", d, got, want)
		}
	}
}
