package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/oidc"
)

const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/.well-known/jwks.json"
	// attemptTimeout is the connectors' timeout here; a call may take
	// attemptSlack more.
	attemptTimeout = 300 * time.Millisecond
	attemptSlack   = time.Second
)

// withAttempts gives a connector attemptTimeout and clock.
func withAttempts(clock *testenv.Clock) func(*oidc.Config) {
	return func(c *oidc.Config) { c.Timeout, c.Clock = attemptTimeout, clock.Now }
}

func assertUnavailable(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("call %d: err = %v, want ErrUnavailable", i, err)
		}
	}
}

func TestDiscovery_ConcurrentCallersShareOneAttempt(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.Hang()
	clock := testenv.NewClock()
	c := newGeneric(t, f, withAttempts(clock))
	// The attempt New made has failed (New may stop waiting for it just
	// before), and its backoff is past: the calls below make a fresh one.
	if err := c.Ready(t.Context()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("Ready: err = %v, want ErrUnavailable", err)
	}
	clock.Advance(oidc.RetryBackoff)
	before := f.Requests(discoveryPath)

	errs, slowest := testenv.CallTogether(10, func() error {
		_, err := c.LoginURL(context.Background(), newLoginState())
		return err
	})
	assertUnavailable(t, errs)
	if slowest > attemptTimeout+attemptSlack {
		t.Errorf("the slowest of 10 calls waited %s on a hung upstream with a %s timeout", slowest, attemptTimeout)
	}
	if n := f.Requests(discoveryPath) - before; n != 1 {
		t.Errorf("10 concurrent calls asked for discovery %d times, want once", n)
	}
}

func TestDiscovery_AFailureIsEveryCallersAnswerUntilTheBackoff(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.FailWith(http.StatusInternalServerError)
	clock := testenv.NewClock()
	c := newGeneric(t, f, withAttempts(clock))
	before := f.Requests(discoveryPath)

	// Recovered, but within the backoff: the failure is the answer, at
	// once and without asking the upstream.
	f.Recover()
	began := time.Now()
	errs, _ := testenv.CallTogether(10, func() error {
		_, err := c.LoginURL(t.Context(), newLoginState())
		return err
	})
	assertUnavailable(t, errs)
	if took := time.Since(began); took > attemptSlack {
		t.Errorf("calls within the backoff took %s", took)
	}
	if n := f.Requests(discoveryPath) - before; n != 0 {
		t.Errorf("%d discovery requests within the backoff, want none", n)
	}

	// Past the backoff, the next call tries again.
	clock.Advance(oidc.RetryBackoff)
	f.SetNextUser(alice)
	if _, err := login(t, c, newLoginState()); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	if n := f.Requests(discoveryPath) - before; n != 1 {
		t.Errorf("%d discovery requests after the backoff, want 1", n)
	}
}

// A caller that gives up (a browser closing its tab) does not fail the
// attempt the others wait for.
func TestDiscovery_ACallerGivingUpDoesNotFailTheOthers(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.FailWith(http.StatusInternalServerError)
	clock := testenv.NewClock()
	c := newGeneric(t, f, func(c *oidc.Config) { c.Timeout, c.Clock = 2*time.Second, clock.Now })
	clock.Advance(oidc.RetryBackoff)
	f.Delay(500 * time.Millisecond)
	before := f.Requests(discoveryPath)

	// The impatient caller starts the attempt and gives up during it; the
	// patient one arrives while it runs.
	impatient, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var impatientErr error
	wg.Go(func() { _, impatientErr = c.LoginURL(impatient, newLoginState()) })
	for f.Requests(discoveryPath) == before {
		time.Sleep(time.Millisecond)
	}
	_, patientErr := c.LoginURL(t.Context(), newLoginState())
	wg.Wait()
	if !errors.Is(impatientErr, upstream.ErrUnavailable) {
		t.Errorf("the caller that gave up: err = %v, want ErrUnavailable", impatientErr)
	}
	if patientErr != nil {
		t.Errorf("the caller that waited: %v", patientErr)
	}
	if n := f.Requests(discoveryPath) - before; n != 1 {
		t.Errorf("%d discovery requests, want 1", n)
	}
}
