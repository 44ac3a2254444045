package fetch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/idbroker/broker/upstream"
)

const (
	// DefaultTimeout bounds one attempt at discovery or at fetching an
	// upstream's keys when the configuration sets none.
	DefaultTimeout = 5 * time.Second
	// RetryBackoff is how long a failed attempt at discovery or at
	// fetching keys is the answer to every caller, before another
	// attempt is made. It keeps a down or hung upstream from being asked
	// once per request, and lets those requests fail at once.
	RetryBackoff = 5 * time.Second
)

// Attempt makes one attempt at a time at something every caller
// needs from an upstream (its discovery document, its keys). Callers that
// arrive while an attempt runs wait for it and share its outcome, and a
// failure stays the outcome for RetryBackoff, so with the upstream down or
// hung no caller queues behind another's attempt or waits out a timeout of
// its own: each waits at most for the one attempt running, which timeout
// bounds.
type Attempt struct {
	what    string        // what is attempted, for errors
	timeout time.Duration // bounds one attempt
	now     func() time.Time

	mu       sync.Mutex // guards the fields below
	running  *attempt   // nil when no attempt is running
	err      error      // why the last attempt failed; nil if it succeeded
	failedAt time.Time  // when it failed
}

// attempt is one run of an Attempt's function.
type attempt struct {
	done chan struct{} // closed once err is set
	err  error
}

// NewAttempt returns an Attempt at what (named in errors), each run bounded
// by timeout (DefaultTimeout when not positive) and clocked by now.
func NewAttempt(what string, timeout time.Duration, now func() time.Time) *Attempt {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Attempt{what: what, timeout: timeout, now: now}
}

// Do returns the outcome of fn: of the attempt running already, or of one
// it starts, or, within RetryBackoff of a failed attempt, that failure
// without another attempt. fn runs detached from ctx's cancellation (it
// keeps its values) and bounded by the timeout, so a caller that gives up
// (a browser closing its tab) does not fail the others. A caller whose
// ctx ends first stops waiting with an error wrapping
// upstream.ErrUnavailable; the attempt goes on for the others.
func (s *Attempt) Do(ctx context.Context, fn func(context.Context) error) error {
	s.mu.Lock()
	if age := s.now().Sub(s.failedAt); s.running == nil && s.err != nil && age < RetryBackoff {
		err := fmt.Errorf("upstream: %s failed %s ago, not tried again before %s: %w", s.what, age.Round(time.Millisecond), RetryBackoff, s.err)
		s.mu.Unlock()
		return err
	}
	a := s.running
	if a == nil {
		a = &attempt{done: make(chan struct{})}
		s.running = a
		go s.run(context.WithoutCancel(ctx), a, fn)
	}
	s.mu.Unlock()

	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return fmt.Errorf("upstream: gave up waiting for %s: %w: %w", s.what, context.Cause(ctx), upstream.ErrUnavailable)
	}
}

func (s *Attempt) run(ctx context.Context, a *attempt, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := fn(ctx)
	s.mu.Lock()
	s.running, s.err, s.failedAt = nil, err, s.now()
	s.mu.Unlock()
	a.err = err
	close(a.done)
}
