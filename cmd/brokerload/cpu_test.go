package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis; utime 250, stime 50.
	stat := []byte("4242 (broker (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 0 0")
	got, err := parseStatCPU(stat)
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (broker) S 1")); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestCPUMeter_ThisProcess(t *testing.T) {
	m := meterCPU(os.Getpid())
	deadline := time.Now().Add(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n
	}
	used, err := m.used()
	if err != nil || used < 0 {
		t.Fatalf("used = %v, %v", used, err)
	}
	if d, _ := meterCPU(0).used(); d != -1 {
		t.Errorf("pid 0 measured %v", d)
	}
}
