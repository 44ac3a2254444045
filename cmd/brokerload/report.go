package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one scenario's outcome.
type result struct {
	name   string
	m      measurement
	rss    rssUse // the broker's resident memory while measuring
	rssErr error
	// cpu is the CPU time the broker used while measuring (-1: not
	// measured), which the report divides by the requests answered.
	cpu    time.Duration
	cpuErr error
	// toolCPU is the CPU time the tool itself used while measuring (-1:
	// not measured): on cores it shares with the broker, what the tool
	// spends the broker cannot, so it caps the rate measured.
	toolCPU    time.Duration
	toolCPUErr error
	note       string
	setupErr   error // prepare failed: nothing was measured
}

// floorResult is the signing floor the run measured.
type floorResult struct {
	alg        string
	goroutines int
	perSecond  float64
	note       string // how alg was chosen, or why the floor is missing
}

// soakReport is the least measured time for which the report says how
// the broker's memory went from start to end.
const soakReport = time.Minute

// errorsShown is how many distinct error messages the report lists per
// scenario.
const errorsShown = 5

// writeReport prints the table: a row per scenario, then the errors and
// notes that explain it.
func writeReport(w io.Writer, header string, floor floorResult, results []result) {
	fmt.Fprintln(w, header)
	if floor.perSecond > 0 {
		fmt.Fprintf(w, "floor: %.0f %s signatures/s on %d goroutines (%s)\n", floor.perSecond, floor.alg, floor.goroutines, floor.note)
	} else {
		fmt.Fprintf(w, "floor: not measured (%s)\n", floor.note)
	}
	fmt.Fprintln(w)
	// Numbers align right; the scenario column is padded here so its names
	// stay left-aligned.
	width := len("scenario")
	for _, r := range results {
		width = max(width, len(r.name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tok\terrors\tok/s\tof floor\tp50\tp95\tp99\tmax\tbroker CPU/req\ttool CPU/req\tbroker RSS\t\n", width, "scenario")
	for _, r := range results {
		if r.setupErr != nil {
			fmt.Fprintf(tw, "%-*s\t-\tsetup failed\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", width, r.name)
			continue
		}
		m := r.m
		rate := float64(m.ok) / m.elapsed.Seconds()
		ratio := "n/a"
		if floor.perSecond > 0 {
			ratio = fmt.Sprintf("%.3f", rate/floor.perSecond)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", width, r.name, m.ok, m.failed, rate, ratio,
			fmtLatency(percentile(m.latencies, 50)), fmtLatency(percentile(m.latencies, 95)),
			fmtLatency(percentile(m.latencies, 99)), fmtLatency(percentile(m.latencies, 100)),
			fmtCPUPerRequest(r.cpu, m.ok), fmtCPUPerRequest(r.toolCPU, m.ok), fmtRSS(r.rss.peak))
	}
	tw.Flush()

	var notes []string
	for _, r := range results {
		if r.setupErr != nil {
			notes = append(notes, fmt.Sprintf("%s: setup failed: %v", r.name, r.setupErr))
			continue
		}
		if r.note != "" {
			notes = append(notes, r.name+": "+r.note)
		}
		if r.m.maxLag > 0 {
			notes = append(notes, fmt.Sprintf("%s: latest start behind schedule %s (latency counts from the scheduled time)", r.name, fmtLatency(r.m.maxLag)))
		}
		if r.rssErr != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", r.name, r.rssErr))
		}
		if r.cpuErr != nil {
			notes = append(notes, fmt.Sprintf("%s: broker %v", r.name, r.cpuErr))
		}
		if r.toolCPUErr != nil {
			notes = append(notes, fmt.Sprintf("%s: tool %v", r.name, r.toolCPUErr))
		}
		// Over a long run, whether memory grew is the question (a soak).
		if r.m.elapsed >= soakReport && r.rss.peak > 0 {
			notes = append(notes, fmt.Sprintf("%s: broker RSS %s at the start of the measured phase, %s at its end, %s at its peak",
				r.name, fmtRSS(r.rss.first), fmtRSS(r.rss.last), fmtRSS(r.rss.peak)))
		}
		for _, e := range r.m.errors.first(errorsShown) {
			notes = append(notes, fmt.Sprintf("%s: %d× %s", r.name, e.Count, e.Message))
		}
		if d := r.m.errors.distinct(); d > errorsShown {
			notes = append(notes, fmt.Sprintf("%s: … and %d more distinct errors", r.name, d-errorsShown))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
}

// fmtLatency rounds to three significant digits.
func fmtLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// fmtCPUPerRequest is a process's CPU time per request answered. For the
// broker it is what a request costs whatever else the machine does, where
// the rate depends on the cores the tool and the database leave it; for
// the tool, how much of those cores it takes.
func fmtCPUPerRequest(cpu time.Duration, ok int64) string {
	if cpu < 0 || ok == 0 {
		return "n/a"
	}
	return fmtLatency(cpu / time.Duration(ok))
}

func fmtRSS(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
