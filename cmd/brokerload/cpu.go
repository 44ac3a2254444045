package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for every architecture it reports to user
// space.
const userHZ = 100

// readCPU returns the CPU time a process has used, user and system
// together, from /proc/<pid>/stat (fields 14 and 15, utime and stime).
func readCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return parseStatCPU(data)
}

func parseStatCPU(stat []byte) (time.Duration, error) {
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses itself: the fields after it start past the last ")".
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time: unexpected stat %q", stat)
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: stat has %d fields after the command", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuMeter measures the CPU time a process uses between start and stop.
type cpuMeter struct {
	pid   int
	start time.Duration
	err   error
}

// meterCPU starts measuring pid; pid 0 measures nothing.
func meterCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid}
	if pid != 0 {
		m.start, m.err = readCPU(pid)
	}
	return m
}

// used returns the CPU time used since meterCPU, or -1 when not measured.
func (m *cpuMeter) used() (time.Duration, error) {
	if m.pid == 0 || m.err != nil {
		return -1, m.err
	}
	end, err := readCPU(m.pid)
	if err != nil {
		return -1, err
	}
	return end - m.start, nil
}
