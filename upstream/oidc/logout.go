package oidc

import (
	"context"
	"fmt"
	"net/url"
)

// LogoutURL implements upstream.Logouter: the upstream's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0) with
// client_id and, when given, post_logout_redirect_uri. It is "" when
// discovery published no end_session_endpoint.
func (c *Connector) LogoutURL(ctx context.Context, postLogoutRedirect string) (string, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return "", err
	}
	if p.logoutURL == "" {
		return "", nil
	}
	u, err := url.Parse(p.logoutURL)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("oidc: connector %q: end_session_endpoint %q is not an absolute http(s) URL", c.cfg.ID, p.logoutURL)
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
