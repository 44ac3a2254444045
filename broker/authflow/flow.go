package authflow

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/backchannel"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/web"
	"github.com/prometheus/client_golang/prometheus"
)

// Paths of the browser's endpoints. The broker advertises the
// authorization and end-session endpoints in discovery.
const (
	AuthorizePath      = "/authorize"
	CallbackPath       = AuthorizePath + "/callback" // a finished login comes back here for its code
	LoginPath          = clients.LoginPath
	LoginCodePath      = "/login/code"
	LoginResendPath    = "/login/resend"
	LoginConnectorPath = "/login/connector"
	EndSessionPath     = "/end_session"
	// LogoutConfirmPath shows and takes the logout confirmation form.
	LogoutConfirmPath = EndSessionPath + "/confirm"
	SignedOutPath     = EndSessionPath + "/done"
)

// Config are the flow's settings.
type Config struct {
	AuthRequestTTL time.Duration // a login from /authorize to its code
	CodeTTL        time.Duration // an authorization code
	OTPCodeTTL     time.Duration
	OTPMaxAttempts int
	// OTPPerEmail, OTPPerEmailCeiling and OTPPerIP bound the one-time
	// codes sent (the configuration's limits section).
	OTPPerEmail, OTPPerEmailCeiling, OTPPerIP ratelimit.Limit
	SessionIdleTTL, SessionAbsoluteTTL        time.Duration
	// AccessTokenTTL bounds the access tokens of a grant a revoked
	// consent revokes: the revocation is kept that long.
	AccessTokenTTL time.Duration
}

// Metrics are the counters the flow keeps.
type Metrics struct {
	Logins          *prometheus.CounterVec // connector, outcome
	OTPCodes        *prometheus.CounterVec // result
	BindingRefusals *prometheus.CounterVec // step, reason
	SSOEnforced     *prometheus.CounterVec // path: otp, connector
	// ConsentDecisions counts consents: allow, deny, remembered, revoke.
	ConsentDecisions *prometheus.CounterVec
}

// Options are what a Flow needs.
type Options struct {
	Issuer     string
	Config     Config
	Store      storage.Storage
	Clients    *clients.Directory
	Upstreams  *connectors.Set
	Identities *identity.Resolver
	Keys       *keys.Manager  // verifies id_token_hint
	Sealer     *keys.Envelope // seals upstream refresh tokens
	Limiter    *ratelimit.Limiter
	Proxies    edge.Proxies
	// Orgs finds organisations for home realm discovery and the
	// organization parameter; nil: there are none.
	Orgs Orgs
	// Backchannel tells clients about ended sessions.
	Backchannel *backchannel.Notifier
	// Targets checks the resources an authorization request names.
	Targets tokens.Targets
	// OTPHash hashes one-time codes; CSRFKey makes CSRF tokens.
	OTPHash, CSRFKey keys.KeyedHash
	Pages            *web.Renderer
	Branding         web.Branding
	ErrorPages       answer.ErrorPages
	Failures         answer.Failures
	Metrics          Metrics
	Log              *slog.Logger
	Now              func() time.Time
	// Decoder and Encoder are the OpenID Connect library's, for
	// requests read and error redirects written as it does.
	Decoder httphelper.Decoder
	Encoder httphelper.Encoder
}

// Flow serves the browser's endpoints.
type Flow struct {
	issuer      string
	secure      bool // issuer is https: cookies are Secure, __Host- named
	cfg         Config
	store       storage.Storage
	clients     *clients.Directory
	upstreams   *connectors.Set
	identities  *identity.Resolver
	orgs        Orgs
	keys        *keys.Manager
	sealer      *keys.Envelope
	limiter     *ratelimit.Limiter
	proxies     edge.Proxies
	backchannel *backchannel.Notifier
	targets     tokens.Targets
	otpHash     keys.KeyedHash
	csrfKey     keys.KeyedHash
	pages       *web.Renderer
	branding    web.Branding
	errorPages  answer.ErrorPages
	failures    answer.Failures
	metrics     Metrics
	log         *slog.Logger
	now         func() time.Time
	decoder     httphelper.Decoder
	encoder     httphelper.Encoder
}

// New returns a Flow.
func New(o Options) *Flow {
	return &Flow{
		issuer: o.Issuer, secure: strings.HasPrefix(o.Issuer, "https://"), cfg: o.Config, store: o.Store,
		clients: o.Clients, upstreams: o.Upstreams, identities: o.Identities, orgs: o.Orgs, keys: o.Keys, sealer: o.Sealer,
		limiter: o.Limiter, proxies: o.Proxies, backchannel: o.Backchannel, targets: o.Targets, otpHash: o.OTPHash, csrfKey: o.CSRFKey,
		pages: o.Pages, branding: o.Branding, errorPages: o.ErrorPages, failures: o.Failures, metrics: o.Metrics,
		log: o.Log, now: o.Now, decoder: o.Decoder, encoder: o.Encoder,
	}
}

// Register mounts the flow's endpoints on mux: authorization, the login
// pages, the upstream callback, the finished login's callback, consent,
// the connected apps page, and logout.
func (f *Flow) Register(mux *http.ServeMux) {
	mux.HandleFunc(AuthorizePath, f.serveAuthorize)
	mux.HandleFunc(CallbackPath, f.authorizeCallback)
	mux.HandleFunc(EndSessionPath, f.serveEndSession)
	mux.HandleFunc(LoginPath, f.loginPage)
	mux.HandleFunc(LoginCodePath, f.loginCode)
	mux.HandleFunc(LoginResendPath, f.loginResend)
	mux.HandleFunc(LoginConnectorPath, f.loginConnector)
	mux.HandleFunc("GET "+connectors.CallbackPrefix+"{connector}", f.upstreamCallback)
	mux.HandleFunc(SignedOutPath, f.signedOut)
	mux.HandleFunc(LogoutConfirmPath, f.confirmLogout)
	mux.HandleFunc(ConsentPath, f.consentPage)
	mux.HandleFunc(AppsPath, f.appsPage)
}
