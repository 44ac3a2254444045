package backchannel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// Bounds on OpenID Connect Back-Channel Logout 1.0 deliveries: a client
// that is down delays nobody's logout and is not retried for ever.
const (
	backchannelAttempts = 4
	backchannelBackoff  = 500 * time.Millisecond // doubled after each failure
	backchannelTimeout  = 5 * time.Second        // per attempt
	// backchannelWait is how long a logout response waits for deliveries,
	// so a quick client has ended its own session before the browser
	// reaches it; slower ones finish in the background.
	backchannelWait = time.Second
	logoutTokenTTL  = 2 * time.Minute
)

// backchannelLogoutEvent is the logout token's event (section 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenClaims are a logout token's claims (section 2.4). It never
// has a nonce, so it cannot be taken for an ID token.
type logoutTokenClaims struct {
	Issuer    string                    `json:"iss"`
	Subject   string                    `json:"sub"`
	Audience  []string                  `json:"aud"`
	IssuedAt  int64                     `json:"iat"`
	Expiry    int64                     `json:"exp"`
	JTI       string                    `json:"jti"`
	SessionID string                    `json:"sid"`
	Events    map[string]map[string]any `json:"events"`
}

// Signer signs a logout token with the ID-token key; *keys.Manager is
// one.
type Signer interface {
	Sign(use keys.Use, alg string, typ string, payload []byte) (string, error)
}

// Options are what a Notifier needs.
type Options struct {
	// Issuer is the logout token's iss.
	Issuer string
	// Keys signs logout tokens with the ID-token key, so that clients
	// verify them as they verify ID tokens.
	Keys Signer
	// LogoutURI is the back-channel logout URI of the client clientID:
	// "" (and no error) when the client registered none or is unknown.
	LogoutURI func(ctx context.Context, clientID string) (string, error)
	// HTTPClient posts logout tokens, and should follow no redirects
	// (newHTTPClient says why); nil is newHTTPClient's.
	HTTPClient *http.Client
	// Now is time.Now when nil.
	Now func() time.Time
	// Log is slog.Default() when nil.
	Log *slog.Logger
}

// Notifier sends back-channel logout for ended sessions. Its deliveries
// run past the request that ended the session (goBackground); Close
// cancels them and waits for them.
type Notifier struct {
	issuer    string
	keys      Signer
	logoutURI func(ctx context.Context, clientID string) (string, error)
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger

	mu  sync.Mutex // orders goBackground's Add before Close's Wait
	wg  sync.WaitGroup
	ctx context.Context
	// stop cancels ctx, ending every delivery still retrying.
	stop context.CancelFunc
}

// New returns a Notifier ready to send; Close stops it.
func New(o Options) *Notifier {
	n := &Notifier{issuer: o.Issuer, keys: o.Keys, logoutURI: o.LogoutURI,
		client: o.HTTPClient, now: o.Now, log: o.Log}
	if n.client == nil {
		n.client = newHTTPClient()
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.ctx, n.stop = context.WithCancel(context.Background())
	return n
}

// Close cancels the deliveries still retrying and waits for them. After
// it, Notify sends nothing.
func (n *Notifier) Close() {
	n.mu.Lock()
	n.stop()
	n.mu.Unlock()
	n.wg.Wait()
}

// newHTTPClient posts logout tokens. It follows no redirects: a
// client answers the POST itself (section 2.8), and a redirect could send
// the token somewhere it was never registered.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: backchannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Notify sends a logout token to every client of the ended session s
// that registered a back-channel logout URI. Deliveries run in the
// background (tracked, and stopped by Close); this waits for them at
// most backchannelWait.
func (n *Notifier) Notify(ctx context.Context, s storage.Session) {
	var pending []<-chan struct{}
	for _, id := range s.Clients {
		uri, err := n.logoutURI(ctx, id)
		if err != nil {
			n.log.WarnContext(ctx, "back-channel logout skipped", "client_id", id, "err", err)
			continue
		}
		if uri == "" {
			continue
		}
		token, err := n.logoutToken(s, id)
		if err != nil {
			n.log.ErrorContext(ctx, "back-channel logout token not signed", "client_id", id, "err", err)
			continue
		}
		done := make(chan struct{})
		started := n.goBackground(func() {
			defer close(done)
			n.deliverLogout(id, uri, token)
		})
		if !started {
			n.log.WarnContext(ctx, "back-channel logout not sent: shutting down", "client_id", id)
			continue
		}
		pending = append(pending, done)
	}
	timer := time.NewTimer(backchannelWait)
	defer timer.Stop()
	for _, done := range pending {
		select {
		case <-done:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// goBackground runs f in a goroutine Close waits for before it returns;
// f must end soon after n.ctx is done. Once Close has stopped the
// background work it runs nothing and returns false.
func (n *Notifier) goBackground(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx.Err() != nil {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// logoutToken signs a logout token for clientID about session s, with
// the ID-token key: clients verify it as they verify ID tokens.
func (n *Notifier) logoutToken(s storage.Session, clientID string) (string, error) {
	now := n.now()
	payload, err := json.Marshal(logoutTokenClaims{
		Issuer:    n.issuer,
		Subject:   s.UserID,
		Audience:  []string{clientID},
		IssuedAt:  now.Unix(),
		Expiry:    now.Add(logoutTokenTTL).Unix(),
		JTI:       uuid.NewString(),
		SessionID: s.ID,
		Events:    map[string]map[string]any{backchannelLogoutEvent: {}},
	})
	if err != nil {
		return "", fmt.Errorf("marshal logout token: %w", err)
	}
	// typ "logout+jwt" (section 2.4): no logout token passes for another
	// kind of JWT.
	token, err := n.keys.Sign(keys.UseIDToken, "", "logout+jwt", payload)
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return token, nil
}

// deliverLogout posts token to uri, retrying network failures and 5xx
// answers with backoff up to backchannelAttempts times. A 4xx is the
// client refusing the token; sending it again would not change that.
func (n *Notifier) deliverLogout(clientID, uri, token string) {
	ctx := n.ctx
	wait := backchannelBackoff
	for attempt := 1; ; attempt++ {
		retry, err := n.postLogoutToken(ctx, uri, token)
		if err == nil {
			n.log.InfoContext(ctx, "back-channel logout delivered", "client_id", clientID, "attempt", attempt)
			return
		}
		if !retry || attempt == backchannelAttempts {
			n.log.WarnContext(ctx, "back-channel logout failed", "client_id", clientID, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			n.log.WarnContext(ctx, "back-channel logout abandoned at shutdown", "client_id", clientID, "attempts", attempt, "err", err)
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// postLogoutToken makes one delivery; retry says whether a failure may be
// worth another attempt.
func (n *Notifier) postLogoutToken(ctx context.Context, uri, token string) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, backchannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return false, fmt.Errorf("back-channel logout request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := n.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("back-channel logout: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("back-channel logout: client answered %s", resp.Status)
	default:
		return false, fmt.Errorf("back-channel logout: client answered %s", resp.Status)
	}
}
