package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
)

// Errors of Resolve besides the store's (storage.ErrUserDisabled,
// storage.ErrAlreadyExists, storage.ErrNotFound) and the upstream's
// (upstream.ErrUnavailable).
var (
	// ErrNotUUID: the store resolved the identity to a user whose id is
	// not a platform UUID. Nothing may be issued for it (rule 2).
	ErrNotUUID = errors.New("identity: resolved user id is not a UUID")
	// ErrRefused: the upstream's answer when completing a first contact
	// was an error or about someone else. The token it was asked with is
	// not acceptable.
	ErrRefused = errors.New("identity: first contact refused")
)

// Store is the one storage operation Resolve needs.
type Store interface {
	ResolveIdentity(ctx context.Context, req storage.ResolveRequest) (storage.Resolution, error)
}

// Resolver resolves upstream identities to platform users. It is safe for
// concurrent use: the store makes each resolution atomic.
type Resolver struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
	orgs  Organizations
}

// Resolution is what Resolve found: the store's resolution, and the
// organisation the identity signed in to (zero for none), of which the
// user is now a member.
type Resolution struct {
	storage.Resolution
	Org storage.Organization
}

// New returns a Resolver over store, dating what it writes by now and
// logging provisioned users to log.
func New(store Store, now func() time.Time, log *slog.Logger) *Resolver {
	return &Resolver{store: store, now: now, log: log}
}

// Options are how one path asks Resolve.
type Options struct {
	// KnownOnly resolves only an identity already known (refreshing its
	// email and name as usual); any other is storage.ErrNotFound, nothing
	// is written and nothing is asked upstream.
	KnownOnly bool
	// AccessToken is the upstream access token the identity was verified
	// from, when there is one (token exchange of an access token). With
	// it, a first contact without a verified email through a connector
	// trusted with email that can ask its upstream
	// (upstream.IdentityCompleter: Auth0's userinfo) is completed there
	// before it is resolved, so a person known by email does not get a
	// second user. A known identity costs one store round trip, as
	// without it, and nothing is asked upstream.
	AccessToken string
	// UpstreamTimeout bounds the completion's call upstream; 0 leaves it
	// to ctx.
	UpstreamTimeout time.Duration
}

// Resolve turns id, which conn verified, into its platform user, in one
// atomic storage operation (storage.Users.ResolveIdentity): a known
// identity gives its user, else (rule 5 allowing) the user whose verified
// email matches gets the identity, else a user is created and logged as
// provisioned. It checks the user's id is a UUID (ErrNotUUID otherwise).
//
// A disabled user is storage.ErrUserDisabled; a preset id (id.UserID)
// belonging to a user without this identity is storage.ErrAlreadyExists;
// an unknown identity under KnownOnly is storage.ErrNotFound. A
// completion refused upstream is ErrRefused; an upstream that cannot
// answer is upstream.ErrUnavailable: the identity is not resolved
// without the email. Any other error is the store failing.
//
// With Organizations, the identity lands in an organisation
// (OrgOfLogin; ErrUnknownUpstreamOrg when refused), an address whose
// organisation requires its own sign-in is *SSORequiredError (the
// upstream's before anything is written, the resolved user's after), an
// email of a domain another organisation holds verified never links, and
// the user becomes a member of the organisation it landed in (just in
// time, role member).
//
// Resolve does not verify id: the connector did.
func (r *Resolver) Resolve(ctx context.Context, conn upstream.Connector, id upstream.Identity, o Options) (Resolution, error) {
	org, err := r.OrgOfLogin(conn.ID(), id.Organization)
	if err != nil {
		return Resolution{}, err
	}
	if sso, ok := r.SSORequired(id.Email, org); ok {
		return Resolution{}, &SSORequiredError{Org: sso}
	}
	req := r.request(conn, id, org)
	completer, ok := conn.(upstream.IdentityCompleter)
	// A verified email links already; an untrusted one never would.
	complete := ok && o.AccessToken != "" && conn.TrustEmail() && !req.LinkByEmail
	req.KnownOnly = o.KnownOnly || complete
	res, err := r.resolved(ctx, conn, req)
	if !o.KnownOnly && complete && errors.Is(err, storage.ErrNotFound) {
		if id, err = r.complete(ctx, completer, id, o); err != nil {
			return Resolution{}, err
		}
		// The completed email is checked as the first was.
		if sso, ok := r.SSORequired(id.Email, org); ok {
			return Resolution{}, &SSORequiredError{Org: sso}
		}
		res, err = r.resolved(ctx, conn, r.request(conn, id, org))
	}
	if err != nil {
		return Resolution{Resolution: res}, err
	}
	// The upstream's email may be missing (an access token names none)
	// or another than the one the user is known by: the user's own
	// address is held to its organisation's sign-in as well, or a token
	// without an email would sign in anyone the organisation requires to
	// come through its own identity provider.
	if sso, ok := r.SSORequired(res.User.Email, org); ok {
		return Resolution{}, &SSORequiredError{Org: sso}
	}
	if org, err = r.ensureMember(ctx, org, res.User.ID); err != nil {
		return Resolution{}, err
	}
	return Resolution{Resolution: res, Org: org}, nil
}

// complete asks the upstream of conn about the first contact id, verified
// from o.AccessToken.
func (r *Resolver) complete(ctx context.Context, conn upstream.IdentityCompleter, id upstream.Identity, o Options) (upstream.Identity, error) {
	if o.UpstreamTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.UpstreamTimeout)
		defer cancel()
	}
	completed, err := conn.CompleteIdentity(ctx, o.AccessToken, id)
	if errors.Is(err, upstream.ErrUnavailable) {
		return upstream.Identity{}, err
	}
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("%w: connector %q: completing a first contact: %w", ErrRefused, conn.ID(), err)
	}
	if completed.Subject != id.Subject {
		return upstream.Identity{}, fmt.Errorf("%w: connector %q: completing subject %q gave subject %q", ErrRefused, conn.ID(), id.Subject, completed.Subject)
	}
	return completed, nil
}

// resolved has the store resolve req, for conn, and checks the user it
// resolves to.
func (r *Resolver) resolved(ctx context.Context, conn upstream.Connector, req storage.ResolveRequest) (storage.Resolution, error) {
	res, err := r.store.ResolveIdentity(ctx, req)
	if err != nil {
		return storage.Resolution{}, err
	}
	if _, err := uuid.Parse(res.User.ID); err != nil {
		return storage.Resolution{}, fmt.Errorf("%w: %q", ErrNotUUID, res.User.ID)
	}
	if res.Created {
		r.log.InfoContext(ctx, "user provisioned", "connector", conn.ID(), "user_id", res.User.ID)
	}
	return res, nil
}

// request is what Resolve asks the store to resolve id, from conn,
// landing in org, to.
func (r *Resolver) request(conn upstream.Connector, id upstream.Identity, org storage.Organization) storage.ResolveRequest {
	// An untrusted connector's "verified" is not stored as verified:
	// a verified email is what a later trusted login links by, so an
	// untrusted upstream could otherwise plant an address and have the
	// real owner's login land in its account. An organisation's identity
	// provider is not trusted with another organisation's addresses.
	verified := conn.TrustEmail() && id.EmailVerified && id.Email != "" && !r.foreignDomain(id.Email, org)
	return storage.ResolveRequest{
		Connector:     conn.ID(),
		Subject:       id.Subject,
		Email:         id.Email,
		EmailVerified: verified,
		Name:          id.Name,
		LinkByEmail:   verified,
		UserID:        id.UserID,
		Now:           r.now(),
	}
}

// Untrusted is a connector named by its id whose email Resolve never
// trusts: for identities no configured connector vouches for, such as a
// machine client's service user (connector "client", subject the client
// id).
type Untrusted string

// ID is the connector's name.
func (u Untrusted) ID() string { return string(u) }

// TrustEmail is false: an Untrusted connector's email never links.
func (Untrusted) TrustEmail() bool { return false }

// ServiceConnector is the connector name under which each machine
// client's service user is kept, with the client id as subject. No
// configured connector may take it, and no administrator may link an
// identity under it.
const ServiceConnector = "client"
