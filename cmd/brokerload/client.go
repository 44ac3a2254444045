package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// Grant and token type names of RFC 8693.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// maxResponse bounds what is read of any response.
const maxResponse = 1 << 20

// newHTTPClient returns the client of every request but those a
// workerClient sends: a transport that keeps a connection per worker alive
// (the default keeps two per host, so 16 workers would open and close
// connections on every request), never follows redirects (the login flow
// follows them itself, checking each), and dials only loopback addresses.
func newHTTPClient(concurrency int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:           loopbackDialer().DialContext,
		MaxIdleConns:          2*concurrency + 16,
		MaxIdleConnsPerHost:   concurrency + 8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// brokerClient speaks the broker's protocol as the tool's client.
type brokerClient struct {
	hc          *http.Client
	base        *url.URL // --broker: every broker request goes here
	issuer      string   // as discovery says; checked against iss in responses
	paths       endpointPaths
	clientID    string
	auth        string // Authorization of the client's requests (basicAuth)
	connector   string
	redirectURI string
	audience    string
}

// basicAuth is the Authorization value of client_secret_basic, built once
// rather than on every request.
func basicAuth(clientID, clientSecret string) string {
	// RFC 6749 section 2.3.1: form-encode both before Basic.
	cred := url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}

// endpointPaths are the broker's endpoint paths, read from discovery.
type endpointPaths struct {
	authorize, token, introspect, jwks, discovery string
}

// discover reads the broker's discovery document. Endpoints are taken by
// path only and sent to --broker: the tool talks to the address it was
// given even if the issuer names another.
func (c *brokerClient) discover(ctx context.Context) error {
	c.paths.discovery = "/.well-known/openid-configuration"
	body, err := c.get(ctx, c.paths.discovery)
	if err != nil {
		return err
	}
	var d struct {
		Issuer        string `json:"issuer"`
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		Introspection string `json:"introspection_endpoint"`
		JWKS          string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	c.issuer = d.Issuer
	for _, e := range []struct {
		dst *string
		raw string
	}{{&c.paths.authorize, d.Authorization}, {&c.paths.token, d.Token}, {&c.paths.introspect, d.Introspection}, {&c.paths.jwks, d.JWKS}} {
		u, err := url.Parse(e.raw)
		if err != nil || e.raw == "" {
			return fmt.Errorf("discovery: endpoint %q is missing or not a URL", e.raw)
		}
		*e.dst = u.EscapedPath()
	}
	return nil
}

// waitReady polls discovery, then /readyz, until the broker answers both
// or wait is over. Ready means the broker has discovered its upstreams
// too: a broker started before the tool's upstream waits out its retry
// backoff, and the first logins would otherwise be refused.
func (c *brokerClient) waitReady(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		err := c.discover(ctx)
		if err == nil {
			_, err = c.get(ctx, "/readyz")
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker at %s not ready after %s: %w", c.base, wait, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *brokerClient) url(path string) string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	return u.String()
}

// httpError is a response with an unexpected status. Its message leaves
// out anything that differs per request, so the error tally groups alike
// failures.
type httpError struct {
	method, path string
	status       int
	code, desc   string
}

func (e *httpError) Error() string {
	msg := fmt.Sprintf("%s %s: %d", e.method, e.path, e.status)
	if e.code != "" {
		msg += " " + e.code
	}
	if e.desc != "" {
		msg += ": " + e.desc
	}
	return msg
}

// requestError wraps a transport failure without its URL, whose query
// differs on every request.
func requestError(method, path string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// do sends req and returns the response body when the status is want.
func (c *brokerClient) do(req *http.Request, want int) (*http.Response, []byte, error) {
	path := req.URL.Path
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, requestError(req.Method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, requestError(req.Method, path, err)
	}
	// Drain what was not read, so the connection is reused.
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return resp, body, statusError(req.Method, path, resp.StatusCode, body)
	}
	return resp, body, nil
}

// statusError is the *httpError of an answer with an unexpected status,
// with the OAuth error of its body if it has one.
func statusError(method, path string, status int, body []byte) error {
	e := &httpError{method: method, path: path, status: status}
	var oe struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil {
		e.code, e.desc = oe.Error, oe.Desc
	}
	return e
}

func (c *brokerClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	_, body, err := c.do(req, http.StatusOK)
	if err == nil && len(body) == 0 {
		err = fmt.Errorf("GET %s: empty body", path)
	}
	return body, err
}

// postForm posts form, encoded, to path, authenticated as the client with
// client_secret_basic.
func (c *brokerClient) postForm(ctx context.Context, path, form string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path), strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Authorization", c.auth)
	_, body, err := c.do(req, http.StatusOK)
	return body, err
}

// formType is the Content-Type of every POST.
const formType = "application/x-www-form-urlencoded"

// tokenResponse is a token endpoint's answer, the fields the tool checks.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// token posts form, encoded, to the token endpoint.
func (c *brokerClient) token(ctx context.Context, form string) (tokenResponse, error) {
	body, err := c.postForm(ctx, c.paths.token, form)
	if err != nil {
		return tokenResponse{}, err
	}
	return decodeToken(c.paths.token, body)
}

// decodeToken decodes the body of a token endpoint's 200 answer, which
// must hold an access token.
func decodeToken(path string, body []byte) (tokenResponse, error) {
	var t tokenResponse
	if err := json.Unmarshal(body, &t); err != nil {
		return tokenResponse{}, fmt.Errorf("POST %s: %w", path, err)
	}
	if t.AccessToken == "" {
		return tokenResponse{}, fmt.Errorf("POST %s: no access_token in the response", path)
	}
	return t, nil
}

// exchange trades an upstream access token for a broker access token
// (RFC 8693).
func (c *brokerClient) exchange(ctx context.Context, subjectToken string) (tokenResponse, error) {
	return c.token(ctx, c.exchangeForm(subjectToken))
}

// exchangeForm is the encoded form of an exchange of subjectToken. It is
// the same for every exchange of the token, so the scenarios encode it
// once, before they measure.
func (c *brokerClient) exchangeForm(subjectToken string) string {
	return url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {tokenTypeAccessToken},
		"audience":           {c.audience},
	}.Encode()
}

// refreshForm is the encoded form of a refresh of refreshToken.
func refreshForm(refreshToken string) string {
	return "grant_type=refresh_token&refresh_token=" + url.QueryEscape(refreshToken)
}

// checkRotated checks that a refresh of old answered with a new refresh
// token.
func checkRotated(path, old string, t tokenResponse) error {
	if t.RefreshToken == "" || t.RefreshToken == old {
		return fmt.Errorf("POST %s: refresh did not rotate the refresh token", path)
	}
	return nil
}

// introspectForm is the encoded form of an introspection of an access
// token.
func introspectForm(accessToken string) string {
	return url.Values{"token": {accessToken}, "token_type_hint": {"access_token"}}.Encode()
}

// decodeIntrospection decodes the body of an introspection endpoint's 200
// answer, which must say the token is active, and returns its sub.
func decodeIntrospection(path string, body []byte) (string, error) {
	var r struct {
		Active bool   `json:"active"`
		Sub    string `json:"sub"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("POST %s: %w", path, err)
	}
	if !r.Active {
		return "", fmt.Errorf("POST %s: a fresh access token is not active", path)
	}
	return r.Sub, nil
}

// login runs a whole browser login through the tool's upstream, as a
// fresh browser would: /authorize with idp, the upstream's /authorize
// (which approves usr at once), the broker's callback, its redirect to
// the client, then the code exchange. The browser keeps the cookies it is
// given, as the broker binds the login to the browser that started it.
// Every hop must be a redirect to a loopback address.
func (c *brokerClient) login(ctx context.Context, usr user, offline bool) (tokenResponse, error) {
	verifier, state, nonce := randomToken(), randomToken(), randomToken()
	sum := sha256.Sum256([]byte(verifier))
	scope := "openid email profile"
	if offline {
		scope += " offline_access"
	}
	q := url.Values{
		"client_id":             {c.clientID},
		"response_type":         {"code"},
		"redirect_uri":          {c.redirectURI},
		"scope":                 {scope},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"idp":                   {c.connector},
		"login_hint":            {usr.email},
	}
	next, err := url.Parse(c.url(c.paths.authorize) + "?" + q.Encode())
	if err != nil {
		return tokenResponse{}, err
	}
	// Broker /authorize → upstream /authorize → broker /callback/<id> →
	// broker /authorize/callback → client redirect URI.
	jar, err := cookiejar.New(nil)
	if err != nil {
		return tokenResponse{}, err
	}
	for range 4 {
		if next, err = c.follow(ctx, jar, next); err != nil {
			return tokenResponse{}, err
		}
	}
	if got := next.Scheme + "://" + next.Host + next.Path; got != strings.Split(c.redirectURI, "?")[0] {
		return tokenResponse{}, fmt.Errorf("login ended at %s, not the redirect URI", got)
	}
	cb := next.Query()
	switch {
	case cb.Get("error") != "":
		return tokenResponse{}, fmt.Errorf("login refused: %s: %s", cb.Get("error"), cb.Get("error_description"))
	case cb.Get("state") != state:
		return tokenResponse{}, errors.New("login: state in the redirect does not match")
	case cb.Get("iss") != c.issuer:
		return tokenResponse{}, fmt.Errorf("login: iss %q in the redirect, want %q", cb.Get("iss"), c.issuer)
	case cb.Get("code") == "":
		return tokenResponse{}, errors.New("login: no code in the redirect")
	}
	t, err := c.token(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {cb.Get("code")},
		"redirect_uri":  {c.redirectURI},
		"code_verifier": {verifier},
	}.Encode())
	if err != nil {
		return tokenResponse{}, err
	}
	if claim, err := jwtClaims(t.IDToken); err != nil || claim.Nonce != nonce {
		return tokenResponse{}, errors.New("login: id_token missing or without the request's nonce")
	}
	if offline && t.RefreshToken == "" {
		return tokenResponse{}, errors.New("login: no refresh_token for offline_access")
	}
	return t, nil
}

// follow GETs u with the cookies in jar, which must answer with a
// redirect, keeps the cookies it sets in jar, and returns where to.
func (c *brokerClient) follow(ctx context.Context, jar http.CookieJar, u *url.URL) (*url.URL, error) {
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("login: refusing to follow a redirect to %s: not a loopback address", u.Host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for _, ck := range jar.Cookies(u) {
		req.AddCookie(ck)
	}
	resp, body, err := c.do(req, http.StatusSeeOther)
	if resp != nil {
		jar.SetCookies(u, resp.Cookies())
	}
	if err != nil && resp != nil && resp.StatusCode == http.StatusFound {
		err = nil // the upstream answers 302, the broker 303
	}
	if err != nil {
		if he := (*httpError)(nil); errors.As(err, &he) && he.code == "" {
			he.desc = pageTitle(body)
		}
		return nil, err
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Path, err)
	}
	return loc, nil
}

// pageTitle pulls the <title> out of an HTML error page, so a broker that
// refuses a login says why in the error tally.
func pageTitle(body []byte) string {
	s := string(body)
	i := strings.Index(s, "<title>")
	j := strings.Index(s, "</title>")
	if i < 0 || j < i {
		return ""
	}
	return strings.TrimSpace(s[i+len("<title>") : j])
}

// tokenClaims are the claims of a broker token the tool looks at.
type tokenClaims struct {
	Sub   string `json:"sub"`
	Nonce string `json:"nonce"`
}

// jwtClaims decodes a JWT's payload without verifying it: the tool checks
// what the broker said, not that the broker signed it (a downstream
// service's job, and not what is measured here).
func jwtClaims(raw string) (tokenClaims, error) {
	_, rest, _ := strings.Cut(raw, ".")
	encoded, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return tokenClaims{}, errors.New("not a compact JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return tokenClaims{}, fmt.Errorf("JWT payload: %w", err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return tokenClaims{}, fmt.Errorf("JWT payload: %w", err)
	}
	return c, nil
}

// jwtAlg returns the alg of a JWT's header.
func jwtAlg(raw string) (string, error) {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", fmt.Errorf("JWT header: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Alg == "" {
		return "", errors.New("JWT header has no alg")
	}
	return h.Alg, nil
}
