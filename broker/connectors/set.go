package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/idbroker/broker/web"
)

// CallbackPrefix is where upstreams send the browser back:
// /callback/<connector id>.
const CallbackPrefix = "/callback/"

// Spec is one configured connector: the settings every connector has,
// and Config, its type's own.
type Spec struct {
	ID, Name string
	Domains  []string
	// Timeout bounds what one request waits on the upstream (default
	// upstream/jwks.DefaultTimeout, the fetch timeout connectors share).
	Timeout time.Duration
	// RecheckInterval is how old an upstream check may be before a
	// refresh asks the upstream again.
	RecheckInterval time.Duration
	// Org is the organisation a stored connector belongs to, or "". An
	// organisation's connector is no button on the login page everyone
	// sees: its people reach it by their domain, the organization
	// parameter or idp.
	Org    string
	Config upstream.Config
}

// Set is the broker's connectors: those of the configuration file,
// fixed for the life of the process, then those stored at run time,
// which Replace swaps. Every lookup reads one snapshot, swapped whole, so
// a request never sees half a change and never waits for one.
type Set struct {
	issuer string
	deps   upstream.Deps
	otp    *otp.Connector

	snap atomic.Pointer[snapshot]
	// mu serialises Replace; lookups take no lock.
	mu sync.Mutex
}

// snapshot is the set at one moment: immutable once stored.
type snapshot struct {
	configured int    // specs[:configured] are the configuration's
	specs      []Spec // configuration order, then stored connectors by id
	byID       map[string]upstream.Connector
	spec       map[string]Spec
	// byDomain maps an email domain to the connector that owns it.
	byDomain map[string]string
}

// Open opens every connector of specs with deps. An upstream that is
// down at start does not stop the broker: connectors discover lazily.
func Open(ctx context.Context, issuer string, specs []Spec, deps upstream.Deps) (*Set, error) {
	s := &Set{issuer: issuer, deps: deps}
	snap := &snapshot{configured: len(specs), specs: specs, byID: map[string]upstream.Connector{}, spec: map[string]Spec{}, byDomain: map[string]string{}}
	for _, sp := range specs {
		conn, err := s.open(ctx, sp)
		if err != nil {
			return nil, fmt.Errorf("broker: connector %q: %w", sp.ID, err)
		}
		if oc, ok := conn.(*otp.Connector); ok {
			if s.otp != nil {
				return nil, fmt.Errorf("broker: connector %q: %w", sp.ID, errors.New("only one otp connector may be configured"))
			}
			s.otp = oc
		}
		snap.byID[sp.ID], snap.spec[sp.ID] = conn, sp
		for _, dom := range sp.Domains {
			dom = strings.ToLower(strings.TrimSpace(dom))
			if other, taken := snap.byDomain[dom]; taken {
				return nil, fmt.Errorf("broker: domain %q is claimed by connectors %q and %q", dom, other, sp.ID)
			}
			snap.byDomain[dom] = sp.ID
		}
	}
	s.snap.Store(snap)
	return s, nil
}

// open opens one connector with the set's deps and its own timeout.
func (s *Set) open(ctx context.Context, sp Spec) (upstream.Connector, error) {
	d := s.deps
	d.Timeout = sp.Timeout
	conn, err := sp.Config.Open(ctx, sp.ID, d)
	if err != nil {
		return nil, err
	}
	if why := neverRechecked(conn); why != "" {
		s.deps.Logger.WarnContext(ctx, "connector's users are never re-checked upstream", "connector", sp.ID, "reason", why)
	}
	return conn, nil
}

// Replace makes stored the set's run-time connectors, beside the
// configuration's, which it never touches. A connector whose settings
// and timeout are unchanged keeps its open connector (and so its
// discovery and keys); only new and changed ones are opened. One that
// fails to open, is a one-time-code connector, or takes a configured
// connector's id is logged and left out: a bad row never stops the
// others. Domains of stored connectors are ignored: organisations route
// by their own verified domains.
func (s *Set) Replace(ctx context.Context, stored []Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	next := &snapshot{configured: old.configured, specs: slices.Clone(old.specs[:old.configured]),
		byID: map[string]upstream.Connector{}, spec: map[string]Spec{}, byDomain: old.byDomain}
	for _, sp := range next.specs {
		next.byID[sp.ID], next.spec[sp.ID] = old.byID[sp.ID], old.spec[sp.ID]
	}
	for _, sp := range stored {
		sp.Domains = nil
		if _, taken := next.byID[sp.ID]; taken {
			s.deps.Logger.ErrorContext(ctx, "stored connector left out: its id is taken", "connector", sp.ID)
			continue
		}
		conn, reused := old.byID[sp.ID], false
		if was, ok := old.spec[sp.ID]; ok && conn != nil && sameSettings(was, sp) {
			reused = true
		}
		if !reused {
			var err error
			if conn, err = s.openStored(ctx, sp); err != nil {
				s.deps.Logger.ErrorContext(ctx, "stored connector left out: it does not open", "connector", sp.ID, "err", err)
				continue
			}
		}
		if _, ok := conn.(*otp.Connector); ok {
			s.deps.Logger.ErrorContext(ctx, "stored connector left out: one-time codes are configured in the file", "connector", sp.ID)
			continue
		}
		next.specs = append(next.specs, sp)
		next.byID[sp.ID], next.spec[sp.ID] = conn, sp
	}
	s.snap.Store(next)
}

// storedOpenWait is how long Replace waits for a stored connector's
// first discovery. Discovery goes on past it, detached, for the first
// login to find done; a hung upstream holds a reload up this long at most.
const storedOpenWait = time.Second

// openStored opens a stored connector, waiting at most storedOpenWait.
func (s *Set) openStored(ctx context.Context, sp Spec) (upstream.Connector, error) {
	ctx, cancel := context.WithTimeout(ctx, storedOpenWait)
	defer cancel()
	return s.open(ctx, sp)
}

// sameSettings says whether an open connector of was serves sp as well:
// what Open was given is unchanged.
func sameSettings(was, sp Spec) bool {
	return was.Timeout == sp.Timeout && reflect.DeepEqual(was.Config, sp.Config)
}

// Configured says whether connector id is the configuration file's
// (false for a stored one, or none).
func (s *Set) Configured(id string) bool {
	snap := s.snap.Load()
	return slices.ContainsFunc(snap.specs[:snap.configured], func(sp Spec) bool { return sp.ID == id })
}

// Specs are the configuration's connectors, then the stored ones open
// now, by id.
func (s *Set) Specs() []Spec { return slices.Clone(s.snap.Load().specs) }

// neverRechecked says why a connector that signs people in will never be
// asked about them again on a broker refresh (a user blocked there keeps
// their broker session until it ends), or "" when it will be, or when
// there is nothing to ask (a one-time code, a token-exchange-only
// connector).
func neverRechecked(conn upstream.Connector) string {
	if _, ok := conn.(upstream.CallbackConnector); !ok {
		return ""
	}
	switch r := conn.(type) {
	case upstream.RefreshTokenAsker:
		if !r.AsksForRefreshToken() {
			return "its scopes leave out offline_access, so the upstream issues no refresh token"
		}
		return ""
	case upstream.Refresher:
		return ""
	}
	return "the connector cannot refresh"
}

// Get is connector id, or nil.
func (s *Set) Get(id string) upstream.Connector { return s.snap.Load().byID[id] }

// OTP is the one-time-code connector, or nil when none is configured.
func (s *Set) OTP() *otp.Connector { return s.otp }

// Buttons are the upstream connectors offered on the login page: the
// configuration's in its order, then stored ones of no organisation.
func (s *Set) Buttons() []web.Connector {
	var out []web.Connector
	snap := s.snap.Load()
	for _, sp := range snap.specs {
		if _, ok := snap.byID[sp.ID].(upstream.CallbackConnector); ok && sp.Org == "" {
			out = append(out, web.Connector{ID: sp.ID, Name: sp.Name})
		}
	}
	return out
}

// ForEmail is home realm discovery: the connector that lists the email's
// domain, or nil for the one-time code.
func (s *Set) ForEmail(email string) upstream.CallbackConnector {
	domain := email[strings.LastIndexByte(email, '@')+1:]
	snap := s.snap.Load()
	c, _ := snap.byID[snap.byDomain[domain]].(upstream.CallbackConnector)
	return c
}

// ForIssuer finds the one connector that lists issuer among the issuers
// whose tokens it verifies. A multi-tenant Entra ID connector open to any
// tenant lists none: its tokens need the connector named.
func (s *Set) ForIssuer(issuer string) (upstream.TokenVerifier, error) {
	var found upstream.TokenVerifier
	snap := s.snap.Load()
	for _, sp := range snap.specs {
		v, ok := snap.byID[sp.ID].(upstream.TokenVerifier)
		if !ok || !slices.Contains(v.Issuers(), issuer) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("issuer %q is listed by connectors %q and %q; the client must name one", issuer, found.ID(), v.ID())
		}
		found = v
	}
	if found == nil {
		return nil, fmt.Errorf("no connector trusts issuer %q", issuer)
	}
	return found, nil
}

// Name is the name connector id is shown by.
func (s *Set) Name(id string) string {
	if sp, ok := s.snap.Load().spec[id]; ok && sp.Name != "" {
		return sp.Name
	}
	return id
}

// Context bounds what one request waits on connector id, all its calls
// to the upstream together, by the connector's timeout: a slow dependency
// costs each request at most its own timeout (docs/design.md rule 7). The
// connectors share their discovery and key fetches between requests, so
// requests do not queue behind one another either.
func (s *Set) Context(ctx context.Context, id string) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.Timeout(id))
}

// Timeout is connector id's timeout (Context).
func (s *Set) Timeout(id string) time.Duration {
	if sp, ok := s.snap.Load().spec[id]; ok && sp.Timeout > 0 {
		return sp.Timeout
	}
	return jwks.DefaultTimeout
}

// RecheckInterval is how old connector id's check of a user may be before
// a refresh asks again.
func (s *Set) RecheckInterval(id string) time.Duration {
	if sp, ok := s.snap.Load().spec[id]; ok {
		return sp.RecheckInterval
	}
	return time.Hour
}

// CallbackURL is where connector id's upstream sends the browser back.
func (s *Set) CallbackURL(id string) string {
	return s.issuer + CallbackPrefix + url.PathEscape(id)
}

// NotReady names the first configured connector whose discovery is not
// done, or "" when every one is ready to serve. Stored connectors are not
// asked: one customer's identity provider being down must not take the
// broker out of its load balancer for everybody.
func (s *Set) NotReady(ctx context.Context, log *slog.Logger) error {
	snap := s.snap.Load()
	for _, sp := range snap.specs[:snap.configured] {
		if r, ok := snap.byID[sp.ID].(upstream.Readier); ok {
			if err := r.Ready(ctx); err != nil {
				log.WarnContext(ctx, "not ready: upstream discovery not done", "connector", sp.ID, "err", err)
				return fmt.Errorf("connector %q: discovery not done", sp.ID)
			}
		}
	}
	return nil
}
