package identity_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/upstream"
)

// connector is a connector as Resolve sees it; with completer set it can
// also ask its upstream about a first contact.
type connector struct {
	id        string
	trust     bool
	completer *completer
}

func (c connector) ID() string       { return c.id }
func (c connector) TrustEmail() bool { return c.trust }

// completing is a connector that is an upstream.IdentityCompleter.
type completing struct{ connector }

func (completing) Issuers() []string { return nil }
func (completing) VerifyToken(context.Context, string, string) (upstream.Identity, error) {
	return upstream.Identity{}, errors.New("not used")
}
func (c completing) CompleteIdentity(ctx context.Context, token string, id upstream.Identity) (upstream.Identity, error) {
	return c.completer.complete(ctx, token, id)
}

// completer is what a completing connector's upstream answers, and counts
// the questions.
type completer struct {
	asked  int
	tokens []string
	answer func(upstream.Identity) (upstream.Identity, error)
}

func (c *completer) complete(ctx context.Context, token string, id upstream.Identity) (upstream.Identity, error) {
	c.asked++
	c.tokens = append(c.tokens, token)
	if _, ok := ctx.Deadline(); !ok {
		return upstream.Identity{}, errors.New("asked without a deadline")
	}
	return c.answer(id)
}

// verifiedEmail is an upstream that says the address is ada's, verified.
func verifiedEmail(id upstream.Identity) (upstream.Identity, error) {
	id.Email, id.EmailVerified, id.Name = "ada@example.com", true, "Ada"
	return id, nil
}

// auth0Completing is a trusted connector that completes first contacts
// by asking c.
func auth0Completing(c *completer) upstream.Connector {
	return completing{connector{id: "auth0", trust: true, completer: c}}
}

// untrustedCompleting is auth0Completing not trusted with email.
func untrustedCompleting(c *completer) upstream.Connector {
	return completing{connector{id: "auth0", completer: c}}
}

var (
	otpConn   = connector{id: "otp", trust: true}
	trusted   = connector{id: "auth0", trust: true}
	untrusted = connector{id: "oidc", trust: false}
)

const ada = "ada@example.com"

// env is a memory store holding ada, known by one-time code with her
// email verified, and the log a Resolver over it writes.
type env struct {
	store *memory.Store
	r     *identity.Resolver
	log   *bytes.Buffer
	ada   storage.User
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{store: memory.New(), log: &bytes.Buffer{}}
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	e.r = identity.New(e.store, now, slog.New(slog.NewTextHandler(e.log, nil)))
	res, err := e.r.Resolve(context.Background(), otpConn, upstream.Identity{Subject: ada, Email: ada, EmailVerified: true}, identity.Options{})
	if err != nil || !res.Created || !res.User.EmailVerified {
		t.Fatalf("ada: %+v, %v", res, err)
	}
	e.ada = res.User
	e.log.Reset()
	return e
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	token := "upstream-access-token"
	for _, tc := range []struct {
		name string
		conn func(*completer) upstream.Connector
		id   upstream.Identity
		opts identity.Options
		// answer is the completing upstream's; nil: it must not be asked.
		answer func(upstream.Identity) (upstream.Identity, error)
		// before runs on the env before Resolve.
		before func(t *testing.T, e *env)
		// err is what Resolve returns; with none, isAda says whose user.
		err      error
		isAda    bool
		created  bool
		verified bool // the resolved user's email is verified
		// namesAda: the upstream names ada's UUID (id.UserID).
		namesAda     bool
		stillUnknown bool // the identity is not known afterwards
	}{
		{
			name:  "a trusted connector's verified email links",
			conn:  func(*completer) upstream.Connector { return trusted },
			id:    upstream.Identity{Subject: "auth0|ada", Email: ada, EmailVerified: true},
			isAda: true, verified: true,
		},
		{
			name:    "a trusted connector's unverified email does not link",
			conn:    func(*completer) upstream.Connector { return trusted },
			id:      upstream.Identity{Subject: "auth0|ada", Email: ada},
			created: true,
		},
		{
			name:    "an untrusted connector's verified email does not link and is stored unverified",
			conn:    func(*completer) upstream.Connector { return untrusted },
			id:      upstream.Identity{Subject: "oidc|ada", Email: ada, EmailVerified: true},
			created: true,
		},
		{
			name:    "a service user is never linked by email",
			conn:    func(*completer) upstream.Connector { return identity.Untrusted("client") },
			id:      upstream.Identity{Subject: "machine", Email: ada, EmailVerified: true, Name: "machine"},
			created: true,
		},
		{
			name:  "known only: a known identity resolves",
			conn:  func(*completer) upstream.Connector { return otpConn },
			id:    upstream.Identity{Subject: ada, Email: ada, EmailVerified: true},
			opts:  identity.Options{KnownOnly: true},
			isAda: true, verified: true,
		},
		{
			name: "known only: an unknown identity is not found and nothing is written",
			conn: func(*completer) upstream.Connector { return trusted },
			id:   upstream.Identity{Subject: "auth0|ada", Email: ada, EmailVerified: true},
			opts: identity.Options{KnownOnly: true},
			err:  storage.ErrNotFound, stillUnknown: true,
		},
		{
			name: "known only: a completing connector is not asked",
			conn: auth0Completing,
			id:   upstream.Identity{Subject: "auth0|ada"},
			opts: identity.Options{KnownOnly: true, AccessToken: token},
			err:  storage.ErrNotFound, stillUnknown: true,
		},
		{
			name: "a disabled user is refused",
			conn: func(*completer) upstream.Connector { return otpConn },
			id:   upstream.Identity{Subject: ada, Email: ada, EmailVerified: true},
			before: func(t *testing.T, e *env) {
				if err := e.store.SetUserDisabled(ctx, e.ada.ID, true); err != nil {
					t.Fatal(err)
				}
			},
			err: storage.ErrUserDisabled,
		},
		{
			name: "a disabled user is refused to an email that would link",
			conn: func(*completer) upstream.Connector { return trusted },
			id:   upstream.Identity{Subject: "auth0|ada", Email: ada, EmailVerified: true},
			before: func(t *testing.T, e *env) {
				if err := e.store.SetUserDisabled(ctx, e.ada.ID, true); err != nil {
					t.Fatal(err)
				}
			},
			err: storage.ErrUserDisabled, stillUnknown: true,
		},
		{
			name:     "a named platform UUID of a user without the identity is refused",
			conn:     func(*completer) upstream.Connector { return untrusted },
			id:       upstream.Identity{Subject: "legacy|someone"},
			namesAda: true,
			err:      storage.ErrAlreadyExists, stillUnknown: true,
		},
		{
			name:    "a named platform UUID is kept for a first-time user",
			conn:    func(*completer) upstream.Connector { return untrusted },
			id:      upstream.Identity{Subject: "legacy|grace", UserID: "77777777-7777-4777-8777-777777777777"},
			created: true,
		},
		{
			name:   "a first contact by access token is completed, then links",
			conn:   auth0Completing,
			id:     upstream.Identity{Subject: "auth0|ada"},
			opts:   identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			answer: verifiedEmail,
			isAda:  true, verified: true,
		},
		{
			name: "a known identity is not completed",
			conn: auth0Completing,
			id:   upstream.Identity{Subject: "auth0|ada"},
			opts: identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			before: func(t *testing.T, e *env) {
				if _, err := e.r.Resolve(ctx, trusted, upstream.Identity{Subject: "auth0|ada", Email: ada, EmailVerified: true}, identity.Options{}); err != nil {
					t.Fatal(err)
				}
			},
			isAda: true, verified: true,
		},
		{
			name:    "an untrusted connector is not asked to complete",
			conn:    untrustedCompleting,
			id:      upstream.Identity{Subject: "auth0|ada"},
			opts:    identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			created: true,
		},
		{
			name:    "without an access token nothing is completed",
			conn:    auth0Completing,
			id:      upstream.Identity{Subject: "auth0|ada"},
			created: true,
		},
		{
			name:  "a verified email is not completed",
			conn:  auth0Completing,
			id:    upstream.Identity{Subject: "auth0|ada", Email: ada, EmailVerified: true},
			opts:  identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			isAda: true, verified: true,
		},
		{
			name: "an unreachable upstream fails the first contact",
			conn: auth0Completing,
			id:   upstream.Identity{Subject: "auth0|ada"},
			opts: identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			answer: func(upstream.Identity) (upstream.Identity, error) {
				return upstream.Identity{}, fmt.Errorf("userinfo: %w", upstream.ErrUnavailable)
			},
			err: upstream.ErrUnavailable, stillUnknown: true,
		},
		{
			name: "an upstream refusing the completion refuses the first contact",
			conn: auth0Completing,
			id:   upstream.Identity{Subject: "auth0|ada"},
			opts: identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			answer: func(upstream.Identity) (upstream.Identity, error) {
				return upstream.Identity{}, upstream.ErrInvalidToken
			},
			err: identity.ErrRefused, stillUnknown: true,
		},
		{
			name: "a completion about someone else is refused",
			conn: auth0Completing,
			id:   upstream.Identity{Subject: "auth0|ada"},
			opts: identity.Options{AccessToken: token, UpstreamTimeout: time.Second},
			answer: func(id upstream.Identity) (upstream.Identity, error) {
				id, _ = verifiedEmail(id)
				id.Subject = "auth0|mallory"
				return id, nil
			},
			err: identity.ErrRefused, stillUnknown: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.before != nil {
				tc.before(t, e)
			}
			if tc.namesAda {
				tc.id.UserID = e.ada.ID
			}
			c := &completer{answer: tc.answer}
			if c.answer == nil {
				c.answer = func(upstream.Identity) (upstream.Identity, error) {
					t.Error("the upstream was asked to complete the identity")
					return upstream.Identity{}, upstream.ErrDenied
				}
			}
			conn := tc.conn(c)
			e.log.Reset()
			res, err := e.r.Resolve(ctx, conn, tc.id, tc.opts)
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.isAda && res.User.ID != e.ada.ID:
				t.Errorf("resolved to %s, not ada %s", res.User.ID, e.ada.ID)
			case !tc.isAda && res.User.ID == e.ada.ID:
				t.Error("resolved to ada")
			case res.Created != tc.created:
				t.Errorf("created %v, want %v", res.Created, tc.created)
			case res.User.EmailVerified != tc.verified:
				t.Errorf("email verified %v, want %v", res.User.EmailVerified, tc.verified)
			case tc.id.UserID != "" && res.User.ID != tc.id.UserID:
				t.Errorf("user id %s, want the named %s", res.User.ID, tc.id.UserID)
			}
			if tc.answer != nil {
				if c.asked != 1 || c.tokens[0] != token {
					t.Errorf("upstream asked %d times with %q, want once with the access token", c.asked, c.tokens)
				}
			}
			logged := strings.Contains(e.log.String(), "user provisioned")
			if want := err == nil && res.Created; logged != want {
				t.Errorf("logged %q, want a provisioning line: %v", e.log.String(), want)
			}
			if want := fmt.Sprintf("connector=%s user_id=%s", conn.ID(), res.User.ID); logged && !strings.Contains(e.log.String(), want) {
				t.Errorf("logged %q, want %q", e.log.String(), want)
			}
			if tc.stillUnknown {
				_, err := e.r.Resolve(ctx, conn, tc.id, identity.Options{KnownOnly: true})
				if !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("the identity became known: %v", err)
				}
			}
		})
	}
}

// notUUID resolves every identity to a user whose id is not a UUID.
type notUUID struct{}

func (notUUID) ResolveIdentity(context.Context, storage.ResolveRequest) (storage.Resolution, error) {
	return storage.Resolution{User: storage.User{ID: "auth0|ada"}, Created: true}, nil
}

func TestResolve_NonUUIDUserIsRefused(t *testing.T) {
	var log bytes.Buffer
	r := identity.New(notUUID{}, time.Now, slog.New(slog.NewTextHandler(&log, nil)))
	res, err := r.Resolve(context.Background(), trusted, upstream.Identity{Subject: "auth0|ada"}, identity.Options{})
	if !errors.Is(err, identity.ErrNotUUID) || res.User.ID != "" {
		t.Fatalf("resolved %+v, %v; want ErrNotUUID and no user", res, err)
	}
	if !strings.Contains(err.Error(), `"auth0|ada"`) {
		t.Errorf("error %q does not quote the id", err)
	}
	if log.Len() != 0 {
		t.Errorf("logged %q for a refused user", log.String())
	}
}

// recorder keeps the requests it is asked to resolve and answers from a
// memory store.
type recorder struct {
	*memory.Store
	reqs []storage.ResolveRequest
}

func (r *recorder) ResolveIdentity(ctx context.Context, req storage.ResolveRequest) (storage.Resolution, error) {
	r.reqs = append(r.reqs, req)
	return r.Store.ResolveIdentity(ctx, req)
}

func TestResolve_RequestCarriesTheIdentity(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := &recorder{Store: memory.New()}
	r := identity.New(rec, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	id := upstream.Identity{ConnectorID: "ignored", Subject: "auth0|ada", Email: ada, EmailVerified: true, Name: "Ada",
		UserID: "77777777-7777-4777-8777-777777777777"}
	if _, err := r.Resolve(context.Background(), trusted, id, identity.Options{}); err != nil {
		t.Fatal(err)
	}
	want := storage.ResolveRequest{Connector: "auth0", Subject: "auth0|ada", Email: ada, EmailVerified: true, Name: "Ada",
		LinkByEmail: true, UserID: id.UserID, Now: now}
	if len(rec.reqs) != 1 || rec.reqs[0] != want {
		t.Errorf("asked %+v, want %+v", rec.reqs, want)
	}
}
