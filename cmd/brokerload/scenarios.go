package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

// Scenario names, in the order a run takes them.
var scenarioNames = []string{
	"exchange-existing", "exchange-new", "login", "jwks-discovery", "refresh", "introspection",
}

// scenario is one kind of load.
type scenario interface {
	// prepare does the unmeasured work the scenario needs first (warming
	// users, logging in to get tokens), with up to workers goroutines.
	prepare(ctx context.Context, workers int) error
	// do is one measured operation by worker w.
	do(ctx context.Context, w int) error
	// verify checks afterwards what can only be checked at the end. It
	// returns a line for the report and the problems found, which count
	// as errors.
	verify(ctx context.Context) (note string, problems []error)
}

// env is what every scenario works with.
type env struct {
	broker *brokerClient
	// workers are the clients of the measured requests, one per worker,
	// for the scenarios of the token, introspection, JWKS and discovery
	// endpoints.
	workers []*workerClient
	up      *upstream
	users   int    // size of the pool of existing users
	runID   string // makes first-time subjects unique across runs
	// firstTimeTokens is how many first-time subjects exchange-new signs
	// tokens for before it measures.
	firstTimeTokens int
}

// firstTimeRate is the rate, per second of --duration, that exchange-new
// signs first-time tokens for before measuring: above what the broker
// does on two cores (3,500/s on Postgres; on memory 8,000/s, the cores'
// limit at 190 µs of the broker's CPU and 50 of the tool's), so a run
// normally never signs while it measures. Signing them takes the tool
// about 5 s per second of --duration with RS256. Signing in the worker
// cost the tool 50 µs a request with ES256 and about 1 ms with RS256, on
// the cores the broker was measured on: with RS256 upstream tokens the
// tool, not the broker, set the rate.
const firstTimeRate = 8000

// firstTimeTokens is how many first-time tokens exchange-new signs before
// measuring under p.
func firstTimeTokens(p plan) int {
	switch {
	case p.requests > 0:
		return int(p.requests)
	case p.rate > 0:
		return int(math.Ceil(p.rate*p.duration.Seconds())) + p.concurrency
	}
	return int(math.Ceil(firstTimeRate * p.duration.Seconds()))
}

func newScenario(name string, e *env) (scenario, error) {
	switch name {
	case "exchange-existing":
		return &exchangeExisting{env: e}, nil
	case "exchange-new":
		return &exchangeNew{env: e}, nil
	case "login":
		return &loginScenario{env: e}, nil
	case "jwks-discovery":
		return &jwksDiscovery{env: e}, nil
	case "refresh":
		return &refreshScenario{env: e}, nil
	case "introspection":
		return &introspection{env: e}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q (one of %v)", name, scenarioNames)
}

// parallel runs f(i) for i in [0, n) on up to workers goroutines and
// returns the first error.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// workerRands gives each worker its own generator: a shared one would
// need a lock on every request.
func workerRands(workers int) []*rand.Rand {
	r := make([]*rand.Rand, workers)
	for i := range r {
		r[i] = rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))
	}
	return r
}

// exchangeExisting exchanges upstream access tokens of a pool of users
// who all have a platform user already. The tokens are signed, and their
// exchanges' forms encoded, before the run, so the tool's own work
// competes with the broker as little as it can.
type exchangeExisting struct {
	*env
	forms []string // encoded exchange of each user's token, by user index
	subs  []string // broker sub of each user, from the warm-up
	rand  []*rand.Rand
}

func (s *exchangeExisting) prepare(ctx context.Context, workers int) error {
	s.forms = make([]string, s.users)
	s.subs = make([]string, s.users)
	s.rand = workerRands(workers)
	for i := range s.forms {
		t, err := s.up.accessToken(poolUser(i))
		if err != nil {
			return err
		}
		s.forms[i] = s.broker.exchangeForm(t)
	}
	// Warm-up: one exchange each, so the measured phase meets only users
	// that exist.
	return parallel(ctx, s.users, workers, func(ctx context.Context, i int) error {
		t, err := s.broker.token(ctx, s.forms[i])
		if err != nil {
			return fmt.Errorf("warming user %d: %w", i, err)
		}
		c, err := jwtClaims(t.AccessToken)
		if err != nil {
			return fmt.Errorf("warming user %d: access token: %w", i, err)
		}
		s.subs[i] = c.Sub
		return nil
	})
}

func (s *exchangeExisting) do(ctx context.Context, w int) error {
	i := s.rand[w].IntN(s.users)
	t, err := s.workers[w].token(ctx, s.forms[i])
	if err != nil {
		return err
	}
	c, err := jwtClaims(t.AccessToken)
	if err != nil {
		return fmt.Errorf("access token: %w", err)
	}
	if c.Sub != s.subs[i] {
		return errors.New("an existing user's exchange returned a different sub than its warm-up")
	}
	return nil
}

func (s *exchangeExisting) verify(context.Context) (string, []error) {
	return fmt.Sprintf("%d existing users, each exchanged once before the measured phase", s.users), nil
}

// exchangeNew exchanges a token of a subject the broker has never seen
// on every request: the just-in-time provisioning path. Tokens are signed,
// and their exchanges' forms encoded, before the run (firstTimeTokens); a
// run that uses them all signs the rest in the worker and says so.
type exchangeNew struct {
	*env
	forms      []string // encoded exchanges of subjects 1, 2, …
	next       atomic.Int64
	signedLate atomic.Int64
	results    [][]newUser // per worker
}

type newUser struct {
	n   int64 // the subject's number
	sub string
}

func (s *exchangeNew) user(n int64) user {
	sub := fmt.Sprintf("new-%s-%d", s.runID, n)
	return user{sub: sub, email: sub + "@" + userDomain}
}

func (s *exchangeNew) prepare(ctx context.Context, workers int) error {
	s.results = make([][]newUser, workers)
	s.forms = make([]string, s.firstTimeTokens)
	return parallel(ctx, len(s.forms), runtime.GOMAXPROCS(0), func(_ context.Context, i int) error {
		tok, err := s.up.accessToken(s.user(int64(i) + 1))
		if err != nil {
			return err
		}
		s.forms[i] = s.broker.exchangeForm(tok)
		return nil
	})
}

func (s *exchangeNew) do(ctx context.Context, w int) error {
	n := s.next.Add(1)
	var form string
	if n <= int64(len(s.forms)) {
		form = s.forms[n-1]
	} else {
		s.signedLate.Add(1)
		tok, err := s.up.accessToken(s.user(n))
		if err != nil {
			return err
		}
		form = s.broker.exchangeForm(tok)
	}
	t, err := s.workers[w].token(ctx, form)
	if err != nil {
		return err
	}
	c, err := jwtClaims(t.AccessToken)
	if err != nil {
		return fmt.Errorf("access token: %w", err)
	}
	s.results[w] = append(s.results[w], newUser{n, c.Sub})
	return nil
}

// verifySample is how many first-time users are exchanged again at the
// end to check their sub did not change.
const verifySample = 32

// verify checks that every first-time subject got its own platform UUID
// and, for a sample, that exchanging again gives the same one: one user
// per person, created exactly once.
func (s *exchangeNew) verify(ctx context.Context) (string, []error) {
	var all []newUser
	for _, r := range s.results {
		all = append(all, r...)
	}
	var problems []error
	seen := make(map[string]int64, len(all))
	for _, u := range all {
		if _, err := uuid.Parse(u.sub); err != nil {
			problems = append(problems, fmt.Errorf("verify: subject %d got sub %q, not a UUID", u.n, u.sub))
			continue
		}
		if other, dup := seen[u.sub]; dup {
			problems = append(problems, fmt.Errorf("verify: subjects %d and %d got the same sub", other, u.n))
		}
		seen[u.sub] = u.n
	}
	same := 0
	step := max(1, len(all)/verifySample)
	checked := 0
	for i := 0; i < len(all) && checked < verifySample; i += step {
		checked++
		u := all[i]
		tok, err := s.up.accessToken(s.user(u.n))
		if err != nil {
			problems = append(problems, err)
			continue
		}
		t, err := s.broker.exchange(ctx, tok)
		if err != nil {
			problems = append(problems, fmt.Errorf("verify: exchanging again: %w", err))
			continue
		}
		c, err := jwtClaims(t.AccessToken)
		if err != nil || c.Sub != u.sub {
			problems = append(problems, fmt.Errorf("verify: subject %d got a second sub on its second exchange", u.n))
			continue
		}
		same++
	}
	note := fmt.Sprintf("%d first-time subjects got %d distinct UUID subs; %d/%d exchanged again kept their sub",
		len(all), len(seen), same, checked)
	if late := s.signedLate.Load(); late > 0 {
		note += fmt.Sprintf("; %d tokens past the %d signed before the run were signed while measuring", late, len(s.forms))
	}
	return note, problems
}

// loginScenario is a whole browser login through the tool's upstream,
// for users of the pool.
type loginScenario struct {
	*env
	rand []*rand.Rand
}

func (s *loginScenario) prepare(_ context.Context, workers int) error {
	s.rand = workerRands(workers)
	return nil
}

func (s *loginScenario) do(ctx context.Context, w int) error {
	_, err := s.broker.login(ctx, poolUser(s.rand[w].IntN(s.users)), false)
	return err
}

func (s *loginScenario) verify(context.Context) (string, []error) {
	return "one login = 4 redirects (one to the upstream) + the code exchange", nil
}

// jwksDiscovery fetches the JWKS and the discovery document in turn.
type jwksDiscovery struct {
	*env
	turn []int
}

func (s *jwksDiscovery) prepare(_ context.Context, workers int) error {
	s.turn = make([]int, workers)
	return nil
}

func (s *jwksDiscovery) do(ctx context.Context, w int) error {
	s.turn[w]++
	wc := s.workers[w]
	req := wc.jwks
	if s.turn[w]%2 == 0 {
		req = wc.discovery
	}
	return wc.get(ctx, req)
}

func (s *jwksDiscovery) verify(context.Context) (string, []error) { return "", nil }

// refreshScenario rotates refresh tokens: each worker keeps its own
// chain, so no token is ever presented twice and any refusal is the
// broker's reuse detection firing wrongly (or a real failure).
type refreshScenario struct {
	*env
	chain    []string
	restarts atomic.Int64
}

func (s *refreshScenario) prepare(ctx context.Context, workers int) error {
	s.chain = make([]string, workers)
	return parallel(ctx, workers, workers, func(ctx context.Context, w int) error {
		t, err := s.broker.login(ctx, poolUser(w%s.users), true)
		if err != nil {
			return fmt.Errorf("login for a refresh token: %w", err)
		}
		s.chain[w] = t.RefreshToken
		return nil
	})
}

func (s *refreshScenario) do(ctx context.Context, w int) error {
	t, err := s.workers[w].refresh(ctx, s.chain[w])
	if err != nil {
		// The chain is dead (its family revoked): start a new one, so one
		// failure does not turn into a run of them.
		s.restarts.Add(1)
		if lt, lerr := s.broker.login(ctx, poolUser(w%s.users), true); lerr == nil {
			s.chain[w] = lt.RefreshToken
		}
		return err
	}
	s.chain[w] = t.RefreshToken
	return nil
}

func (s *refreshScenario) verify(context.Context) (string, []error) {
	note := fmt.Sprintf("%d chains, one per worker", len(s.chain))
	if n := s.restarts.Load(); n > 0 {
		note += fmt.Sprintf("; %d restarted by a new login after a refusal", n)
	}
	return note, nil
}

// introspection introspects an access token each worker got by logging
// in before the run.
type introspection struct {
	*env
	forms []string // encoded introspection of each worker's token
	subs  []string // each token's sub
}

func (s *introspection) prepare(ctx context.Context, workers int) error {
	s.forms = make([]string, workers)
	s.subs = make([]string, workers)
	return parallel(ctx, workers, workers, func(ctx context.Context, w int) error {
		t, err := s.broker.login(ctx, poolUser(w%s.users), false)
		if err != nil {
			return fmt.Errorf("login for an access token: %w", err)
		}
		c, err := jwtClaims(t.AccessToken)
		if err != nil {
			return fmt.Errorf("access token: %w", err)
		}
		s.forms[w], s.subs[w] = introspectForm(t.AccessToken), c.Sub
		return nil
	})
}

func (s *introspection) do(ctx context.Context, w int) error {
	sub, err := s.workers[w].introspect(ctx, s.forms[w])
	if err == nil && sub != s.subs[w] {
		err = errors.New("introspection answered another sub than the token's")
	}
	return err
}

func (s *introspection) verify(context.Context) (string, []error) { return "", nil }
