package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
)

// authorizeError is the error a client got at its redirect URI, from the
// query or the fragment, and where it was.
type authorizeError struct {
	params   url.Values
	fragment bool
}

// clientErrorOf returns the error response page redirected to the client
// at host, failing the test if the browser was not sent there.
func clientErrorOf(t *testing.T, page *testenv.Page, host string) authorizeError {
	t.Helper()
	if page.Location == nil || page.Location.Host != host {
		t.Fatalf("want a redirect to the client at %s, got %d (location %v): %.300s", host, page.Status, page.Location, page.Body)
	}
	if page.Location.Fragment != "" {
		q, err := url.ParseQuery(page.Location.Fragment)
		if err != nil {
			t.Fatalf("fragment %q: %v", page.Location.Fragment, err)
		}
		return authorizeError{q, true}
	}
	return authorizeError{page.Location.Query(), false}
}

// assertRefusalPage checks the browser got a page, not a redirect, saying
// what was wrong.
func assertRefusalPage(t *testing.T, page *testenv.Page, says string) {
	t.Helper()
	if page.Location != nil || page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "<h1>") || !strings.Contains(page.Body, says) {
		t.Errorf("want a 400 page saying %q, got %d (location %v): %.300s", says, page.Status, page.Location, page.Body)
	}
}

func TestAuthorize_RepeatedParameterIsInvalidRequest(t *testing.T) {
	e := newEnv(t)
	// RFC 6749 section 3.1: "Request and response parameters MUST NOT be
	// included more than once." With client_id and redirect_uri each sent
	// once, and registered, the client hears it (section 4.1.2.1).
	for _, p := range []string{"scope", "response_type", "code_challenge", "code_challenge_method", "nonce", "prompt", "login_hint", "idp"} {
		t.Run(p+" to the client", func(t *testing.T) {
			a := authRequest{pkce: testenv.NewPKCE(), state: "s1"}
			first := e.authorizeURL(a)
			u, _ := url.Parse(first)
			q := u.Query()
			v := q.Get(p)
			if v == "" {
				v = "otp" // a connector, for idp
			}
			q[p] = []string{v, v}
			u.RawQuery = q.Encode()
			got := clientErrorOf(t, e.browser().Get(u.String()), "127.0.0.1:5555")
			if got.params.Get("error") != "invalid_request" || !strings.Contains(got.params.Get("error_description"), p) ||
				got.params.Get("state") != "s1" || got.params.Get("iss") != e.issuer {
				t.Errorf("client got %v", got.params)
			}
		})
	}
	t.Run("state to the client, without a state", func(t *testing.T) {
		got := clientErrorOf(t, e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), extra: url.Values{"state": {"a", "b"}}})), "127.0.0.1:5555")
		// Neither value is the state: the client is told, and matches the
		// answer to no request.
		if got.params.Get("error") != "invalid_request" || got.params.Has("state") {
			t.Errorf("client got %v", got.params)
		}
	})
	// Without one trustworthy client_id and redirect_uri there is nowhere
	// safe to send the browser.
	for name, extra := range map[string]url.Values{
		"client_id":                  {"client_id": {"dev", "dev"}},
		"redirect_uri":               {"redirect_uri": {devRedirect, "http://127.0.0.1:5555/other"}},
		"the same redirect_uri":      {"redirect_uri": {devRedirect, devRedirect}},
		"scope of an unknown client": {"client_id": {"nobody"}, "scope": {"openid", "email"}},
	} {
		t.Run(name+" as a page", func(t *testing.T) {
			assertRefusalPage(t, e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s1", extra: extra})), "more than once")
		})
	}
	// RFC 8707 section 2 lets resource repeat; and parameters the broker
	// does not know are ignored (RFC 6749 section 3.1), repeated or not.
	for name, extra := range map[string]url.Values{
		"resource":     {"resource": {"https://api.example.com", "https://api.example.com"}},
		"an extension": {"utm_source": {"a", "b"}},
	} {
		t.Run(name+" may repeat", func(t *testing.T) {
			page := e.browser().Get(e.authorizeURL(authRequest{clientID: backendID, redirectURI: backendRedirect, pkce: testenv.NewPKCE(), extra: extra}))
			if !isLoginPage(page) {
				t.Errorf("want the login page, got %d (location %v)", page.Status, page.Location)
			}
		})
	}
}

func TestAuthorize_RequestURIIsNotSupported(t *testing.T) {
	e := newEnv(t)
	// OpenID Connect Core section 6.2: request_uri_not_supported. The
	// library would ignore the parameter and go on with the rest.
	extra := url.Values{"request_uri": {"https://client.example/request.jwt"}}
	got := clientErrorOf(t, e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s1", extra: extra})), "127.0.0.1:5555")
	if got.params.Get("error") != "request_uri_not_supported" || got.params.Get("state") != "s1" || got.params.Get("iss") != e.issuer {
		t.Errorf("client got %v", got.params)
	}
	extra.Set("client_id", "nobody")
	assertRefusalPage(t, e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s1", extra: extra})), "request_uri")
}

func TestAuthorize_UnsupportedResponseTypeRedirectsToClient(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		responseType string
		fragment     bool // where the client that asked reads its answer
	}{
		{"token", true},
		{"id_token", true},
		{"code id_token", true},
		{"device_code", false},
	} {
		t.Run(tc.responseType, func(t *testing.T) {
			extra := url.Values{"response_type": {tc.responseType}}
			got := clientErrorOf(t, e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s1", extra: extra})), "127.0.0.1:5555")
			// RFC 6749 sections 4.1.2.1 and 4.2.2.1.
			if got.params.Get("error") != "unsupported_response_type" || got.params.Get("state") != "s1" || got.params.Get("iss") != e.issuer {
				t.Errorf("client got %v", got.params)
			}
			// OAuth 2.0 Multiple Response Type Encoding Practices section
			// 5: a response type that returns a token answers in the
			// fragment.
			if got.fragment != tc.fragment {
				t.Errorf("answer in the fragment: %v, want %v", got.fragment, tc.fragment)
			}
		})
	}
	t.Run("with an unregistered redirect URI", func(t *testing.T) {
		extra := url.Values{"response_type": {"token"}}
		assertRefusalPage(t, e.browser().Get(e.authorizeURL(authRequest{redirectURI: "https://evil.example/cb", pkce: testenv.NewPKCE(), extra: extra})), "response_type")
	})
}
