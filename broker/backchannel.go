package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// newBackchannelClient posts logout tokens. It follows no redirects: a
// client answers the POST itself (section 2.8), and a redirect could send
// the token somewhere it was never registered.
func newBackchannelClient() *http.Client {
	return &http.Client{
		Timeout: backchannelTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// notifyBackchannel sends a logout token to every client of the ended
// session s that registered a back-channel logout URI. Deliveries run in
// the background (tracked, and stopped when Run returns); this waits for
// them at most backchannelWait.
func (b *Broker) notifyBackchannel(ctx context.Context, s storage.Session) {
	var pending []<-chan struct{}
	for _, id := range s.Clients {
		client, err := b.clients.get(ctx, id)
		if errors.Is(err, errUnknownClient) {
			continue
		}
		if err != nil {
			b.log.WarnContext(ctx, "back-channel logout skipped", "client_id", id, "err", err)
			continue
		}
		if client.backchannelLogoutURI == "" {
			continue
		}
		token, err := b.logoutToken(s, client.id)
		if err != nil {
			b.log.ErrorContext(ctx, "back-channel logout token not signed", "client_id", id, "err", err)
			continue
		}
		done := make(chan struct{})
		started := b.goBackground(func() {
			defer close(done)
			b.deliverLogout(client.id, client.backchannelLogoutURI, token)
		})
		if !started {
			b.log.WarnContext(ctx, "back-channel logout not sent: shutting down", "client_id", id)
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

// goBackground runs f in a goroutine Run waits for before it returns; f
// must end soon after b.backgroundCtx is done. Once Run has stopped the
// background work it runs nothing and returns false.
func (b *Broker) goBackground(f func()) bool {
	b.backgroundMu.Lock()
	defer b.backgroundMu.Unlock()
	if b.backgroundCtx.Err() != nil {
		return false
	}
	b.background.Add(1)
	go func() {
		defer b.background.Done()
		f()
	}()
	return true
}

// logoutToken signs a logout token for clientID about session s, with
// the ID-token key: clients verify it as they verify ID tokens.
func (b *Broker) logoutToken(s storage.Session, clientID string) (string, error) {
	now := b.now()
	payload, err := json.Marshal(logoutTokenClaims{
		Issuer:    b.issuer,
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
	token, err := b.keys.Sign(keys.UseIDToken, "", "logout+jwt", payload)
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return token, nil
}

// deliverLogout posts token to uri, retrying network failures and 5xx
// answers with backoff up to backchannelAttempts times. A 4xx is the
// client refusing the token; sending it again would not change that.
func (b *Broker) deliverLogout(clientID, uri, token string) {
	ctx := b.backgroundCtx
	wait := backchannelBackoff
	for attempt := 1; ; attempt++ {
		retry, err := b.postLogoutToken(ctx, uri, token)
		if err == nil {
			b.log.InfoContext(ctx, "back-channel logout delivered", "client_id", clientID, "attempt", attempt)
			return
		}
		if !retry || attempt == backchannelAttempts {
			b.log.WarnContext(ctx, "back-channel logout failed", "client_id", clientID, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			b.log.WarnContext(ctx, "back-channel logout abandoned at shutdown", "client_id", clientID, "attempts", attempt, "err", err)
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// postLogoutToken makes one delivery; retry says whether a failure may be
// worth another attempt.
func (b *Broker) postLogoutToken(ctx context.Context, uri, token string) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, backchannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return false, fmt.Errorf("back-channel logout request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.backchannel.Do(req)
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
