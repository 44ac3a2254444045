package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCheckLoopbackURL(t *testing.T) {
	for _, ok := range []string{
		"http://127.0.0.1:8080", "http://127.3.2.1", "https://localhost:8443/base", "http://[::1]:8080",
	} {
		if _, err := checkLoopbackURL(ok); err != nil {
			t.Errorf("checkLoopbackURL(%q) = %v, want accepted", ok, err)
		}
	}
	for _, bad := range []string{
		"http://10.0.0.1:8080", "http://192.168.1.10", "http://172.16.0.1", "https://example.com",
		"http://127.0.0.1.nip.io", "http://localhost.example.com", "http://user@127.0.0.1:8080",
		"ftp://127.0.0.1", "127.0.0.1:8080", "http://0.0.0.0:8080", "http://[::]:8080", "",
	} {
		if _, err := checkLoopbackURL(bad); err == nil {
			t.Errorf("checkLoopbackURL(%q) accepted, want refused", bad)
		}
	}
}

func TestRun_RefusesNonLoopbackBroker(t *testing.T) {
	for _, broker := range []string{"http://192.0.2.10:8080", "https://broker.example.com"} {
		var stdout, stderr bytes.Buffer
		// Were the broker not refused first, the run would start an
		// upstream on 127.0.0.1:9400 and wait for the broker; --wait 0
		// and a port of 0 keep even that failure short.
		err := run(context.Background(), []string{"run", "--broker", broker, "--upstream-addr", "127.0.0.1:0", "--wait", "0s", "--upstream-keys", ""}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("run --broker %s: err = %v, want a refusal naming loopback", broker, err)
		}
		if stdout.Len() > 0 {
			t.Errorf("run --broker %s printed a report: %s", broker, stdout.String())
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"config", "--broker", "http://10.1.2.3:8080"}, &stdout, &bytes.Buffer{}); err == nil {
		t.Error("config --broker 10.1.2.3: no error")
	}
}

func TestLoopbackOnly_RefusesOtherAddresses(t *testing.T) {
	for _, addr := range []string{"192.0.2.1:80", "[2001:db8::1]:443", "10.0.0.1:8080"} {
		if err := loopbackOnly(context.Background(), "tcp", addr, nil); !errors.Is(err, errNotLoopback) {
			t.Errorf("loopbackOnly(%s) = %v, want errNotLoopback", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "[::1]:8080"} {
		if err := loopbackOnly(context.Background(), "tcp", addr, nil); err != nil {
			t.Errorf("loopbackOnly(%s) = %v, want nil", addr, err)
		}
	}
}
