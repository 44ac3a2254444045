package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
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
	Config          upstream.Config
}

// Set is the broker's connectors.
type Set struct {
	issuer string
	specs  []Spec // configuration order
	byID   map[string]upstream.Connector
	spec   map[string]Spec
	// byDomain maps an email domain to the connector that owns it.
	byDomain map[string]string
	otp      *otp.Connector
}

// Open opens every connector of specs with deps. An upstream that is
// down at start does not stop the broker: connectors discover lazily.
func Open(ctx context.Context, issuer string, specs []Spec, deps upstream.Deps) (*Set, error) {
	s := &Set{issuer: issuer, specs: specs, byID: map[string]upstream.Connector{}, spec: map[string]Spec{}, byDomain: map[string]string{}}
	for _, sp := range specs {
		d := deps
		d.Timeout = sp.Timeout
		conn, err := sp.Config.Open(ctx, sp.ID, d)
		if err != nil {
			return nil, fmt.Errorf("broker: connector %q: %w", sp.ID, err)
		}
		if oc, ok := conn.(*otp.Connector); ok {
			if s.otp != nil {
				return nil, fmt.Errorf("broker: connector %q: %w", sp.ID, errors.New("only one otp connector may be configured"))
			}
			s.otp = oc
		}
		s.byID[sp.ID], s.spec[sp.ID] = conn, sp
		if why := neverRechecked(conn); why != "" {
			deps.Logger.WarnContext(ctx, "connector's users are never re-checked upstream", "connector", sp.ID, "reason", why)
		}
		for _, dom := range sp.Domains {
			dom = strings.ToLower(strings.TrimSpace(dom))
			if other, taken := s.byDomain[dom]; taken {
				return nil, fmt.Errorf("broker: domain %q is claimed by connectors %q and %q", dom, other, sp.ID)
			}
			s.byDomain[dom] = sp.ID
		}
	}
	return s, nil
}

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
func (s *Set) Get(id string) upstream.Connector { return s.byID[id] }

// OTP is the one-time-code connector, or nil when none is configured.
func (s *Set) OTP() *otp.Connector { return s.otp }

// Buttons are the upstream connectors offered on the login page, in
// configuration order.
func (s *Set) Buttons() []web.Connector {
	var out []web.Connector
	for _, sp := range s.specs {
		if _, ok := s.byID[sp.ID].(upstream.CallbackConnector); ok {
			out = append(out, web.Connector{ID: sp.ID, Name: sp.Name})
		}
	}
	return out
}

// ForEmail is home realm discovery: the connector that lists the email's
// domain, or nil for the one-time code.
func (s *Set) ForEmail(email string) upstream.CallbackConnector {
	domain := email[strings.LastIndexByte(email, '@')+1:]
	c, _ := s.byID[s.byDomain[domain]].(upstream.CallbackConnector)
	return c
}

// ForIssuer finds the one connector that lists issuer among the issuers
// whose tokens it verifies. A multi-tenant Entra ID connector open to any
// tenant lists none: its tokens need the connector named.
func (s *Set) ForIssuer(issuer string) (upstream.TokenVerifier, error) {
	var found upstream.TokenVerifier
	for _, sp := range s.specs {
		v, ok := s.byID[sp.ID].(upstream.TokenVerifier)
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
	if sp, ok := s.spec[id]; ok && sp.Name != "" {
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
	if sp, ok := s.spec[id]; ok && sp.Timeout > 0 {
		return sp.Timeout
	}
	return jwks.DefaultTimeout
}

// RecheckInterval is how old connector id's check of a user may be before
// a refresh asks again.
func (s *Set) RecheckInterval(id string) time.Duration {
	if sp, ok := s.spec[id]; ok {
		return sp.RecheckInterval
	}
	return time.Hour
}

// CallbackURL is where connector id's upstream sends the browser back.
func (s *Set) CallbackURL(id string) string {
	return s.issuer + CallbackPrefix + url.PathEscape(id)
}

// NotReady names the first connector whose discovery is not done, or ""
// when every connector is ready to serve.
func (s *Set) NotReady(ctx context.Context, log *slog.Logger) error {
	for _, sp := range s.specs {
		if r, ok := s.byID[sp.ID].(upstream.Readier); ok {
			if err := r.Ready(ctx); err != nil {
				log.WarnContext(ctx, "not ready: upstream discovery not done", "connector", sp.ID, "err", err)
				return fmt.Errorf("connector %q: discovery not done", sp.ID)
			}
		}
	}
	return nil
}
