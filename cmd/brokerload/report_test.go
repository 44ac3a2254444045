package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A run long enough to be a soak says how the broker's memory went from
// the start of the measured phase to its end; a short one gives the peak
// alone.
func TestReport_SoakSaysHowMemoryWent(t *testing.T) {
	const mib = 1 << 20
	run := func(elapsed time.Duration) string {
		var out strings.Builder
		writeReport(&out, "header", floorResult{}, []result{{
			name: "exchange-existing",
			m:    measurement{ok: 10, elapsed: elapsed, latencies: []time.Duration{time.Millisecond}, errors: &errorTally{}},
			rss:  rssUse{first: 44 * mib, last: 51 * mib, peak: 52 * mib},
		}})
		return out.String()
	}
	soak := run(10 * time.Minute)
	if !strings.Contains(soak, "broker RSS 44.0 MiB at the start of the measured phase, 51.0 MiB at its end, 52.0 MiB at its peak") {
		t.Errorf("a 10-minute run does not say how memory went:\n%s", soak)
	}
	if short := run(10 * time.Second); strings.Contains(short, "at its end") || !strings.Contains(short, "52.0 MiB") {
		t.Errorf("a 10-second run:\n%s", short)
	}
}

// The tool's own CPU time per request is reported beside the broker's:
// on shared cores it is what the tool takes from the broker.
func TestReport_GivesTheToolsCPUPerRequest(t *testing.T) {
	m := measurement{ok: 10, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}, errors: &errorTally{}}
	var out strings.Builder
	writeReport(&out, "header", floorResult{}, []result{
		{name: "exchange-existing", m: m, cpu: 2 * time.Millisecond, toolCPU: 500 * time.Microsecond},
		{name: "introspection", m: m, cpu: -1, toolCPU: -1, toolCPUErr: errors.New("cpu time: no /proc")},
	})
	report := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`max  broker CPU/req  tool CPU/req  broker RSS`),
		regexp.MustCompile(`exchange-existing .* 200µs +50µs +\S+ MiB`),
		regexp.MustCompile(`introspection .* n/a +n/a +\S+ MiB`),
		regexp.MustCompile(`introspection: tool cpu time: no /proc`),
	} {
		if !want.MatchString(report) {
			t.Errorf("the report does not match %s:\n%s", want, report)
		}
	}
}
