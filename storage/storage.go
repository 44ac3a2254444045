// Package storage defines what the broker keeps and the operations it needs
// on it. Operations that must be atomic (resolving an identity, redeeming a
// code, rotating a refresh token, checking a one-time code, taking a
// rate-limit slot, consuming a jti, ending a session) are single methods, so
// every backend makes them atomic its own way and no caller can forget to.
//
// Implementations live in storage/memory and storage/postgres; both pass the
// suite in storage/storagetest. This package imports none of the project's
// packages.
package storage

import (
	"fmt"

	"context"
	"errors"
	"github.com/google/uuid"
	"time"
)

// Errors every backend returns (possibly wrapped) so callers can tell
// "no such thing" and refused operations from an unreachable store. Any
// other error means the store could not answer and the request must fail
// closed with a 5xx.
var (
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists is returned when creating something whose key is taken.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrCodeRedeemed is returned by RedeemAuthCode for a code already used;
	// the returned AuthCode names the grant issued at first use.
	ErrCodeRedeemed = errors.New("storage: authorization code already redeemed")
	// ErrRefreshReused is returned by RotateRefreshToken when a rotated token
	// is presented again outside the retry window; the family is revoked.
	ErrRefreshReused = errors.New("storage: refresh token reused, family revoked")
	// ErrRevoked is returned for a revoked or expired refresh family.
	ErrRevoked = errors.New("storage: revoked or expired")
	// ErrOTPMismatch is returned by CheckOTPChallenge for a wrong code.
	ErrOTPMismatch = errors.New("storage: one-time code does not match")
	// ErrOTPExhausted is returned once a challenge has used up its attempts.
	ErrOTPExhausted = errors.New("storage: one-time code attempts exhausted")
	// ErrExpired is returned for a challenge or request past its expiry.
	ErrExpired = errors.New("storage: expired")
	// ErrReplay is returned by ConsumeJTI for an identifier already seen.
	ErrReplay = errors.New("storage: jti already used")
	// ErrUserDisabled is returned by ResolveIdentity and AccessTokenUser
	// for a disabled user.
	ErrUserDisabled = errors.New("storage: user disabled")
	// ErrInvalidText is returned by an operation given text that no
	// record can hold: a string that is not UTF-8 or that holds a NUL,
	// which Postgres refuses. It also matches ErrNotFound, since nothing
	// is kept under such a key; a backend that can hold any string (as
	// memory can) answers a lookup by one with ErrNotFound alone. Either
	// way the request was bad, not the store.
	ErrInvalidText error = invalidText{}
)

type invalidText struct{}

func (invalidText) Error() string { return "storage: text is not UTF-8 or holds a NUL" }

func (invalidText) Is(target error) bool { return target == ErrNotFound }

// Storage is everything the broker persists.
type Storage interface {
	Users
	AuthFlows
	Tokens
	Sessions
	Clients
	SigningKeys
	Abuse
	Audit
	Organizations
	Resources
	Consents
	Registrations

	// Ping reports whether the store can be reached.
	Ping(ctx context.Context) error
	// DeleteExpired removes rows whose lifetime ended before now and
	// returns how many it removed. It must not block other operations for
	// long: backends delete in small batches.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
	// Close releases the store's resources.
	Close() error
}

// User is a platform user. ID is a UUID and is the sub of every token.
type User struct {
	ID            string
	Email         string // normalised (trimmed, lower-cased); may be empty
	EmailVerified bool
	Name          string
	Disabled      bool
	// Admin says the user holds the admin role: the broker grants them
	// the admin scope through a client allowed it, and its admin API
	// serves them. Machine clients are never given the role; their rights
	// are their configuration's.
	Admin     bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LastLoginGranularity is how stale Identity.LastLogin may be: a
// resolution within it of the recorded login need not write, so the hot
// path of repeated logins and exchanges is a read.
const LastLoginGranularity = time.Minute

// Identity links an upstream subject to a user. (Connector, Subject) is unique.
type Identity struct {
	Connector string
	Subject   string
	UserID    string
	Email     string
	Name      string
	CreatedAt time.Time
	LastLogin time.Time
}

// ResolveRequest is an upstream identity to resolve to a user.
type ResolveRequest struct {
	Connector     string
	Subject       string
	Email         string // normalised
	EmailVerified bool
	Name          string
	// LinkByEmail permits linking to an existing user whose verified email
	// equals Email. The broker sets it only when the connector is trusted
	// to assert email and the upstream said the address is verified.
	LinkByEmail bool
	// UserID, when set, is the UUID a newly created user gets (legacy and
	// imported platforms whose ids must be kept). It never moves an
	// identity that already belongs to another user, and a new identity
	// whose verified email belongs to a user other than UserID is refused
	// with ErrAlreadyExists: the upstream's id and its email disagree.
	UserID string
	// KnownOnly resolves only an identity already known (refreshing it
	// as usual); for any other, ErrNotFound, and nothing is written. It
	// lets a caller learn more about a first contact before resolving
	// it, at no cost to the known.
	KnownOnly bool
	Now       time.Time
}

// PresetUserID returns UserID in canonical form, or "" when it is not set.
func (r ResolveRequest) PresetUserID() (string, error) {
	if r.UserID == "" {
		return "", nil
	}
	id, err := uuid.Parse(r.UserID)
	if err != nil {
		return "", fmt.Errorf("storage: resolve identity: user id %q: %w", r.UserID, err)
	}
	return id.String(), nil
}

// RefreshUser brings u's email and name up to date with what the upstream
// said at login, as ResolveIdentity does for a known identity. An empty
// email or name leaves the stored one alone, and an email stays verified
// when the upstream repeats it unverified, because another identity of the
// user may have vouched for it. takenByOther says another user holds
// r.Email verified, so u cannot. It reports whether u changed.
func (r ResolveRequest) RefreshUser(u User, takenByOther bool) (User, bool) {
	changed := false
	if r.Name != "" && r.Name != u.Name {
		u.Name = r.Name
		changed = true
	}
	if r.Email != "" {
		verified := r.EmailVerified && !takenByOther
		switch {
		case r.Email != u.Email:
			u.Email, u.EmailVerified = r.Email, verified
			changed = true
		case verified && !u.EmailVerified:
			u.EmailVerified = true
			changed = true
		}
	}
	if changed {
		u.UpdatedAt = r.Now.UTC()
	}
	return u, changed
}

// Resolution is the outcome of ResolveIdentity.
type Resolution struct {
	User    User
	Created bool // a new user was created
	Linked  bool // a new identity was attached to an existing user
}

// ImportUser is one user of a bulk import.
type ImportUser struct {
	ID            string
	Email         string
	EmailVerified bool
	Name          string
	Identities    []ImportIdentity
}

// ImportIdentity is an upstream identity of an imported user.
type ImportIdentity struct {
	Connector string
	Subject   string
}

// ImportResult counts what an import changed.
type ImportResult struct {
	UsersCreated      int
	IdentitiesCreated int
}

// Users holds users and their upstream identities.
type Users interface {
	// ResolveIdentity resolves an upstream identity in one atomic step:
	// a known (connector, subject) gives its user (email and name refreshed
	// when they changed); else, with LinkByEmail, a user whose verified
	// email matches gets the identity; else a new user is created. Any
	// number of concurrent calls for the same identity or the same verified
	// email yield one user. A disabled user gives ErrUserDisabled.
	ResolveIdentity(ctx context.Context, req ResolveRequest) (Resolution, error)
	GetUser(ctx context.Context, id string) (User, error)
	// SetUserDisabled disables or enables a user. A disabled user is
	// refused by ResolveIdentity; the broker refuses their tokens.
	SetUserDisabled(ctx context.Context, id string, disabled bool) error
	// SetUserAdmin grants (admin true) or revokes the admin role of a
	// user; setting what the user already has changes nothing. An
	// unknown user gives ErrNotFound.
	SetUserAdmin(ctx context.Context, id string, admin bool) error
	// GetUserByEmail returns the user whose verified email is email, or
	// else ErrNotFound.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	ListIdentities(ctx context.Context, userID string) ([]Identity, error)
	// ImportUsers writes all users and identities or nothing. A user or
	// identity that already exists exactly as given is left alone, so a
	// second run changes nothing; one that conflicts (same id with other
	// data, an identity of another user, a verified email taken) fails the
	// whole import with an error naming it.
	ImportUsers(ctx context.Context, users []ImportUser, now time.Time) (ImportResult, error)
	// ListUsers returns up to limit users whose ids sort after after
	// (byte-wise; "" starts at the beginning), ordered by id: a page, and
	// the last id of one page is the after of the next.
	ListUsers(ctx context.Context, after string, limit int) ([]User, error)
	// DeleteUser removes a user with their identities, sessions and
	// refresh families, atomically: afterwards nothing the user held is
	// honoured (AccessTokenUser answers ErrNotFound), and their identities
	// resolve to a new user. An unknown user gives ErrNotFound.
	DeleteUser(ctx context.Context, id string) error
	// LinkIdentity attaches the upstream identity (Connector, Subject) to
	// the existing user UserID, atomically. Linking an identity the user
	// already has changes nothing; one that belongs to another user gives
	// ErrAlreadyExists; an unknown user ErrNotFound.
	LinkIdentity(ctx context.Context, ident Identity) error
	// UnlinkIdentity detaches (connector, subject) from user userID; an
	// identity the user does not have gives ErrNotFound.
	UnlinkIdentity(ctx context.Context, userID, connector, subject string) error
}

// AuthRequest is an authorization request between /authorize and the code.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *time.Duration
	LoginHint           string
	UILocales           []string
	Audience            []string // resources the access token is for
	CreatedAt           time.Time
	ExpiresAt           time.Time
	// BrowserHash binds the request to the browser that started it: a
	// hash of that browser's binding cookie (never the cookie itself),
	// which every later step of the request must present. It is set when
	// the request is created and never changes: UpdateAuthRequest keeps
	// it whatever update returns. Empty only for requests stored by a
	// release before it, which no step accepts.
	BrowserHash []byte

	// Upstream login in progress: which connector, and the state, nonce and
	// PKCE verifier the broker sent it. UpstreamState is unique.
	ConnectorID      string
	UpstreamState    string
	UpstreamNonce    string
	UpstreamVerifier string

	// Set once the user has authenticated.
	UserID   string
	AuthTime time.Time
	AMR      []string
	IDP      string
	// Org is the broker organisation (its UUID) the login is in, for the
	// org_id claim: the one organization= chose until the login ends,
	// then the login's (the connector's, or the upstream organisation's
	// mapping); "" for none.
	Org       string
	SessionID string
	Done      bool
	// UpstreamRefreshToken is the encrypted upstream refresh token, kept
	// with the refresh family so the broker can re-check the upstream.
	UpstreamRefreshToken []byte
	// Impersonator names whoever signed in as the user with the
	// upstream's leave (a WorkOS dashboard member), as the act claim of
	// every token of the login does; "" for the user's own login. It
	// travels to the code, the refresh family and the session.
	Impersonator string
}

// AuthCode is an issued authorization code, stored under a hash of the code.
type AuthCode struct {
	CodeHash             []byte
	ClientID             string
	RedirectURI          string
	UserID               string
	Scopes               []string
	Audience             []string
	Nonce                string
	CodeChallenge        string
	CodeChallengeMethod  string
	AuthTime             time.Time
	AMR                  []string
	IDP                  string
	Org                  string
	SessionID            string
	UpstreamRefreshToken []byte
	Impersonator         string // as AuthRequest.Impersonator
	ExpiresAt            time.Time
	// GrantID is set when the code is redeemed: the refresh family and
	// access tokens issued for it carry it, so a second redemption can
	// revoke them.
	GrantID string
}

// OTPChallenge is a one-time code sent for an auth request. There is at most
// one per auth request; a resend replaces it.
type OTPChallenge struct {
	AuthRequestID string
	Email         string
	CodeHash      []byte
	Attempts      int
	// AttemptKey, when set, pools the wrong guesses of every challenge
	// carrying it (the broker: one email address asked for from one
	// client address), so that a new challenge, a resend or another
	// auth request buys no more guesses: see CheckOTPChallenge.
	AttemptKey string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// AuthFlows holds auth requests, codes and one-time-code challenges.
type AuthFlows interface {
	CreateAuthRequest(ctx context.Context, req AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (AuthRequest, error)
	// GetAuthRequestByUpstreamState finds the request an upstream callback
	// belongs to.
	GetAuthRequestByUpstreamState(ctx context.Context, state string) (AuthRequest, error)
	// UpdateAuthRequest applies update to the stored request atomically.
	UpdateAuthRequest(ctx context.Context, id string, update func(AuthRequest) (AuthRequest, error)) (AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error

	// CreateAuthCode stores a code and deletes its auth request, atomically.
	CreateAuthCode(ctx context.Context, code AuthCode, authRequestID string) error
	// RedeemAuthCode marks the code used and records grantID, atomically:
	// of two concurrent redemptions exactly one succeeds. A code used
	// before gives ErrCodeRedeemed with the stored code (carrying the first
	// GrantID); an expired one ErrExpired; an unknown one ErrNotFound.
	RedeemAuthCode(ctx context.Context, codeHash []byte, grantID string, now time.Time) (AuthCode, error)

	// PutOTPChallenge stores a challenge, replacing the request's previous one.
	PutOTPChallenge(ctx context.Context, c OTPChallenge) error
	// CheckOTPChallenge compares codeHash with the request's challenge in
	// constant time, atomically. A match deletes the challenge and returns
	// it. A mismatch counts an attempt and gives ErrOTPMismatch; at
	// maxAttempts failed attempts the challenge is dead and every later
	// check gives ErrOTPExhausted. Past its expiry: ErrExpired. None:
	// ErrNotFound.
	//
	// A challenge with an AttemptKey also counts its mismatches in that
	// key's pool, and is ErrOTPExhausted while the pool holds maxAttempts
	// of them. A pool opens at the first check of a challenge carrying its
	// key and closes when that challenge expires: at most maxAttempts
	// wrong guesses per key within a code's lifetime, however many
	// challenges carry it. Concurrent checks of challenges sharing a key
	// are counted one by one.
	CheckOTPChallenge(ctx context.Context, authRequestID string, codeHash []byte, maxAttempts int, now time.Time) (OTPChallenge, error)
}

// RefreshFamily is the line of refresh tokens descending from one grant.
type RefreshFamily struct {
	ID                   string // the grant id
	ClientID             string
	UserID               string
	Scopes               []string
	Audience             []string
	AuthTime             time.Time
	AMR                  []string
	IDP                  string
	Org                  string
	SessionID            string
	UpstreamRefreshToken []byte
	UpstreamCheckedAt    time.Time
	Impersonator         string // as AuthRequest.Impersonator
	CreatedAt            time.Time
	LastUsedAt           time.Time
	ExpiresAt            time.Time // absolute lifetime
	IdleTimeout          time.Duration
	Revoked              bool
}

// RevokedFamilyRetention is how long DeleteExpired keeps a revoked refresh
// family past its lifetime: its revocation is what revokes the access
// tokens of its grant (AccessTokenUser), and those can outlive the family
// by their own lifetime, which the broker's configuration keeps below it.
const RevokedFamilyRetention = 24 * time.Hour

// Sweepable reports whether DeleteExpired may remove f at now.
func (f RefreshFamily) Sweepable(now time.Time) bool {
	if f.Revoked {
		return f.Expired(now.Add(-RevokedFamilyRetention))
	}
	return f.Expired(now)
}

// Expired reports whether f is past its absolute or idle lifetime at now.
func (f RefreshFamily) Expired(now time.Time) bool {
	if !now.Before(f.ExpiresAt) {
		return true
	}
	return f.IdleTimeout > 0 && !now.Before(f.LastUsedAt.Add(f.IdleTimeout))
}

// RotateRequest asks RotateRefreshToken to replace one token by its successor.
type RotateRequest struct {
	TokenHash     []byte
	SuccessorHash []byte
	// RetryWindow: a token rotated less than this long ago whose successor
	// has not been used may be presented again and yields the same
	// successor (the broker derives successors deterministically).
	RetryWindow time.Duration
	Now         time.Time
}

// AccessTokenRef is what an access token the broker issued says about
// itself, read from the verified token. Storage keeps no record per access
// token, so issuing one (the token-exchange hot path) writes nothing; it
// keeps what revokes tokens: a jti, a grant, or all of a user's tokens up
// to a moment.
type AccessTokenRef struct {
	ID        string // jti
	GrantID   string // refresh family or code grant; empty for an exchange
	UserID    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Tokens holds refresh families and access-token revocations.
type Tokens interface {
	// CreateRefreshFamily stores a family and its first token. A family
	// whose grant (of the same id) RevokeGrant has revoked, while that
	// revocation is kept, is not stored: ErrRevoked, before any
	// ErrAlreadyExists. The two are atomic with respect to each other: a
	// revocation and a creation of one grant, however they overlap, leave
	// no live family, so a code replayed while its first redemption is
	// slow revokes what that redemption goes on to issue.
	//
	// Nor is a family stored, ErrRevoked too, under a session (a
	// non-empty SessionID) that is gone or past its lifetime at
	// CreatedAt, or for a user who is gone, disabled, or whose tokens
	// RevokeUserTokens revoked at or after AuthTime (in whole seconds, as
	// AccessTokenUser judges). Again atomically: EndSession,
	// SetUserDisabled, RevokeUserTokens and DeleteUser, however they
	// overlap a creation under that session or for that user, leave no
	// live family, so a code redeemed while its login is logged out or
	// its user disabled gives nothing that outlives the logout.
	CreateRefreshFamily(ctx context.Context, f RefreshFamily, tokenHash []byte) error
	// RotateRefreshToken replaces the token by its successor, atomically.
	// An active token: rotated, successor stored, family's last use set. A
	// token rotated within RetryWindow whose successor is unused: the
	// family, as a retry. Any other rotated token: the family is revoked
	// and ErrRefreshReused. Revoked family or grant, or past its absolute
	// or idle lifetime: ErrRevoked. Unknown: ErrNotFound.
	RotateRefreshToken(ctx context.Context, req RotateRequest) (RefreshFamily, error)
	// GetRefreshFamilyByToken returns the family of a token without using it.
	GetRefreshFamilyByToken(ctx context.Context, tokenHash []byte) (RefreshFamily, error)
	// GetRefreshGrant is GetRefreshFamilyByToken with the family's user,
	// in one read: what a refresh checks before it rotates. A family whose
	// user is gone is ErrNotFound too.
	GetRefreshGrant(ctx context.Context, tokenHash []byte) (RefreshFamily, User, error)
	// UpdateRefreshFamilyUpstream records a re-check of the upstream.
	UpdateRefreshFamilyUpstream(ctx context.Context, familyID string, upstreamRefreshToken []byte, checkedAt time.Time) error
	// RevokeGrant revokes a grant: its refresh family, if it has one, and
	// every access token issued under it; a family created for it later is
	// refused (CreateRefreshFamily). A code grant that issued only access
	// tokens has no family; revoking it, or a grant never seen, is not an
	// error. The revocation is kept until until, which the caller
	// sets past the expiry of any access token the grant can have issued.
	RevokeGrant(ctx context.Context, grantID string, until time.Time) error
	// RevokeUserTokens revokes every refresh family of a user and every
	// access token issued to the user at or before now.
	RevokeUserTokens(ctx context.Context, userID string, now time.Time) error
	// RevokeAccessToken revokes one access token until it expires.
	RevokeAccessToken(ctx context.Context, t AccessTokenRef) error
	// AccessTokenUser returns the user of an access token while nothing
	// has revoked it. ErrRevoked: its jti or its grant was revoked (a
	// revoked refresh family revokes the grant of the same id), or its
	// user's tokens were revoked at or after IssuedAt, compared in whole
	// seconds as IssuedAt is (a token issued in the second of a user's
	// revocation counts as revoked). ErrUserDisabled, and ErrNotFound for
	// a user who is gone. One round trip: every token-accepting endpoint
	// calls it.
	AccessTokenUser(ctx context.Context, t AccessTokenRef) (User, error)
}

// Session is a broker single-sign-on session. ID is random and is the only
// thing the browser holds.
type Session struct {
	ID         string
	UserID     string
	AuthTime   time.Time
	AMR        []string
	IDP        string
	Clients    []string // clients that got tokens under this session
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute lifetime
	IdleTTL    time.Duration
	// Org (a broker organisation's UUID, or "") and UpstreamRefreshToken
	// (encrypted) are the first login's, so tokens issued by single
	// sign-on carry its org_id and their refresh families are re-checked
	// upstream like the first login's.
	Org                  string
	UpstreamRefreshToken []byte
	// Impersonator is the first login's (AuthRequest.Impersonator): the
	// tokens single sign-on issues from an impersonated login say so too.
	Impersonator string
}

// Sessions holds single-sign-on sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a live session (not ended, within both lifetimes
	// at now) or ErrNotFound.
	GetSession(ctx context.Context, id string, now time.Time) (Session, error)
	// TouchSession records use of a session by a client.
	TouchSession(ctx context.Context, id, clientID string, now time.Time) error
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// EndSession deletes the session and revokes the refresh families
	// issued under it, atomically, and returns the ended session. A
	// family being created under it meanwhile is revoked or refused
	// (CreateRefreshFamily).
	EndSession(ctx context.Context, id string) (Session, error)
	// UpdateSessionUpstream replaces the upstream refresh token old with
	// next on the session and on its refresh families that still hold old,
	// after a re-check rotated it: an upstream with single-use refresh
	// tokens refuses old from then on. Nothing matching is not an error.
	UpdateSessionUpstream(ctx context.Context, id string, old, next []byte) error
	// ResealUpstreamTokens passes every upstream refresh token stored with
	// a refresh family or a session (revoked and expired ones too) to
	// reseal, and where reseal reports it changed, replaces it with next:
	// each row atomically, and only if it still holds the bytes reseal was
	// given; a row a re-check rotated meanwhile is read again and passed
	// to reseal again. An error wrapping ErrUnreadable leaves the row as
	// is and counts it; any other error stops the pass (what was replaced
	// stays replaced). Rows without a token are not counted.
	ResealUpstreamTokens(ctx context.Context, reseal func(old []byte) (next []byte, changed bool, err error)) (ResealCounts, error)
}

// ErrUnreadable, wrapped in an error of a ResealUpstreamTokens function,
// says a sealed value opens under none of the keys: the row is left as
// it is, and counted.
var ErrUnreadable = errors.New("storage: sealed value unreadable")

// ResealCounts is what ResealUpstreamTokens did, in rows (a family and
// its session holding the same token count as two).
type ResealCounts struct {
	Resealed   int // replaced with what reseal returned
	Current    int // reseal reported no change: already sealed as wanted
	Unreadable int // reseal could not open it: left as it is
}

// Client is an OAuth client: the one client model. Storage holds it in
// full; the broker builds the same type from each client of its
// configuration file (a read-only overlay that is never stored). Storage
// does not validate it: the broker checks every client, stored or
// configured, against one rule set before it is written or served.
type Client struct {
	ID                     string
	Name                   string
	Public                 bool
	SecretHashes           []SecretHash
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Audiences              []string
	Scopes                 []string
	AllowedOrigins         []string
	JWKSURL                string
	JWKS                   []byte
	BackchannelLogoutURI   string
	// IDTokenSignedResponseAlg is the algorithm of the client's ID
	// tokens; "" for the broker's default.
	IDTokenSignedResponseAlg string
	// Actors are who may act in the client's token exchanges
	// ("client:<id>" or "user:<UUID>").
	Actors []string
	// Introspector lets the client introspect every client's tokens.
	Introspector bool
	// ThirdParty marks a client its users must consent to (docs/design.md):
	// one registered through /register, or not run by the platform.
	// Third-party clients may only ask for resources that accept them.
	ThirdParty bool
	// RegistrationTokenHash is the SHA-256 of the registration access
	// token of a client registered through /register (RFC 7592); nil for
	// every other client.
	RegistrationTokenHash []byte
	// LastUsedAt is when the client last obtained a token, recorded
	// coarsely; registered clients unused for too long expire.
	LastUsedAt time.Time
	// IDJAGAudiences are the authorization servers, by issuer identifier,
	// the client may get identity assertion grants (ID-JAGs,
	// draft-ietf-oauth-identity-assertion-authz-grant) for through token
	// exchange; empty: none.
	IDJAGAudiences []string
	ServiceUserID  string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// SecretHash is the SHA-256 of a client secret. A zero ExpiresAt never expires.
type SecretHash struct {
	Hash      []byte
	ExpiresAt time.Time
}

// Clients holds clients managed at run time.
type Clients interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) (Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// SigningKey is one of the broker's signing keys. The private key is
// encrypted by the keys package; storage never sees it in the clear.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // RS256, ES256, EdDSA
	Use        string // "id_token" or "access_token"
	PublicJWK  []byte // JSON
	PrivateKey []byte // encrypted
	CreatedAt  time.Time
	PublishAt  time.Time // in the JWKS from
	SignFrom   time.Time // signs from
	SignUntil  time.Time // stops signing at
	RemoveAt   time.Time // leaves the JWKS at
}

// SigningKeys holds the broker's signing keys.
type SigningKeys interface {
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeys replaces the key set with what update returns,
	// atomically and exclusively: of several replicas calling it at once,
	// each sees the result of the one before.
	UpdateSigningKeys(ctx context.Context, update func([]SigningKey) ([]SigningKey, error)) ([]SigningKey, error)
}

// Abuse holds rate-limit counters and used jtis, shared by every replica.
type Abuse interface {
	// TakeRateLimitSlot counts one event under key in a fixed window and
	// reports whether it is within limit; if not, how long until the
	// window ends.
	TakeRateLimitSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (allowed bool, retryAfter time.Duration, err error)
	// RateLimited reports, without counting anything, whether key's
	// current window already holds more than limit events, and if so how
	// long until it ends. It lets a caller refuse before doing the work a
	// limit protects (checking a client secret, say).
	RateLimited(ctx context.Context, key string, limit int, now time.Time) (limited bool, retryAfter time.Duration, err error)
	// ConsumeJTI records a token identifier until expiresAt; a second use
	// gives ErrReplay.
	ConsumeJTI(ctx context.Context, jti string, expiresAt time.Time) error
}

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	Time    time.Time
	Actor   string
	Action  string
	Target  string
	Details map[string]string
}

// Audit holds the audit log.
type Audit interface {
	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, limit int) ([]AuditEvent, error)
}
