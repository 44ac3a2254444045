package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// badText are values no parameter may carry: bytes a database cannot hold
// as text, and UTF-8 that is not (overlong, a surrogate).
var badText = []struct{ name, value string }{
	{"NUL", "a\x00b"},
	{"invalid UTF-8", "a\xffb"},
	{"overlong", "a\xc0\xafb"},
	{"surrogate", "a\xed\xa0\x80b"},
	{"control", "a\x1bb"},
}

// reply is one answer, taken without following redirects.
type reply struct {
	status   int
	header   http.Header
	body     string
	location *url.URL
}

// badBytesEnv is a broker with connectors and the admin API, one auth
// request showing its login form, and an admin token.
type badBytesEnv struct {
	*upstreams
	client *http.Client // the browser's cookies; follows no redirect
	id     string       // a live auth request
	csrf   string       // its form token
	admin  string       // an admin API access token
}

func newBadBytesEnv(t *testing.T, store storage.Storage, opts ...envOption) *badBytesEnv {
	u := newUpstreams(t, nil, append([]envOption{withAdmin, withStore(store)}, opts...)...)
	b := u.browser()
	page := b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn"}))
	form := page.HiddenFields("/login")
	if form["id"] == "" || form["csrf"] == "" {
		t.Fatalf("authorize: want the login form, got %d: %s", page.Status, page.Body)
	}
	return &badBytesEnv{
		upstreams: u,
		client: &http.Client{Jar: b.Client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		id:    form["id"],
		csrf:  form["csrf"],
		admin: u.mustClientToken(adminBotID, adminBotSecret, adminAudience),
	}
}

// send makes a request with a raw target (path and query, escaped by the
// caller) and an optional form or JSON body. A request the server drops
// (a handler that panicked) fails the test.
func (e *badBytesEnv) send(method, target string, body io.Reader, header http.Header) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.issuer+target, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %q: no answer: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if loc, err := resp.Location(); err == nil {
		r.location = loc
	}
	return r
}

func (e *badBytesEnv) get(path string, q url.Values) reply {
	return e.send(http.MethodGet, path+"?"+q.Encode(), nil, nil)
}

func (e *badBytesEnv) post(path string, form url.Values) reply {
	return e.send(http.MethodPost, path, strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

// adminSend sends target to the admin API with the admin token and a raw
// JSON body (or none).
func (e *badBytesEnv) adminSend(method, target, body string) reply {
	h := http.Header{"Authorization": {"Bearer " + e.admin}, "Content-Type": {"application/json"}}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return e.send(method, "/admin/v1"+target, rd, h)
}

// The answer formats of the endpoints.
const (
	asPage     = "page"      // a readable HTML page, 4xx
	asOAuth    = "oauth"     // OAuth JSON invalid_request, 400
	asOAuthAny = "oauth 4xx" // an OAuth JSON error, 4xx
	asRedirect = "redirect"  // an error redirect to the client's redirect URI
)

// jsonString writes s as the body of a JSON string by hand: NUL and
// controls as escapes (a raw one is not JSON), other bytes raw, since
// encoding/json would turn invalid UTF-8 into U+FFFD before it is sent.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 {
			b.WriteString(`\u00`)
			b.WriteString("0123456789abcdef"[c>>4 : c>>4+1])
			b.WriteString("0123456789abcdef"[c&15 : c&15+1])
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestBadBytes_AreBadRequests(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newBadBytesEnv(t, store)
		authorize := func(k, v string) reply {
			u, _ := url.Parse(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn"}))
			q := u.Query()
			q.Set(k, v)
			return e.get("/authorize", q)
		}
		form := func(extra ...string) url.Values {
			f := url.Values{"id": {e.id}, "csrf": {e.csrf}}
			for i := 0; i+1 < len(extra); i += 2 {
				f.Set(extra[i], extra[i+1])
			}
			return f
		}
		const user = "/users/00000000-0000-4000-8000-000000000001"
		assertionKey := newClientKey(t, "k")
		cases := []struct {
			name   string
			format string
			do     func(bad string) reply
		}{
			{"authorize client_id", asPage, func(bad string) reply { return authorize("client_id", bad) }},
			{"authorize redirect_uri", asPage, func(bad string) reply { return authorize("redirect_uri", devRedirect+bad) }},
			{"authorize state", asRedirect, func(bad string) reply { return authorize("state", bad) }},
			{"authorize login_hint", asRedirect, func(bad string) reply { return authorize("login_hint", bad) }},
			{"authorize nonce", asRedirect, func(bad string) reply { return authorize("nonce", bad) }},
			{"token client_id", asOAuth, func(bad string) reply {
				return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {bad}})
			}},
			{"token client_id in basic auth", asOAuth, func(bad string) reply {
				return e.send(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials"), http.Header{
					"Content-Type":  {"application/x-www-form-urlencoded"},
					"Authorization": {basicAuth(url.QueryEscape(bad), "secret")},
				})
			}},
			// The edge cannot see inside a client assertion: the store
			// and the broker's reading of its answers must hold.
			{"token client_assertion sub", asOAuthAny, func(bad string) reply {
				return e.post("/token", url.Values{"grant_type": {"client_credentials"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {assertionKey.assertion(t, bad, e.issuer, time.Minute)}})
			}},
			{"introspect client_id", asOAuth, func(bad string) reply {
				return e.post("/introspect", url.Values{"token": {"x"}, "client_id": {bad}, "client_secret": {"s"}})
			}},
			{"revoke client_id", asOAuth, func(bad string) reply {
				return e.post("/revoke", url.Values{"token": {"x"}, "client_id": {bad}, "client_secret": {"s"}})
			}},
			{"end_session client_id", asPage, func(bad string) reply {
				return e.get("/end_session", url.Values{"client_id": {bad}, "post_logout_redirect_uri": {"http://127.0.0.1:6666/bye"}})
			}},
			{"end_session state", asPage, func(bad string) reply {
				return e.get("/end_session", url.Values{"client_id": {backendID}, "post_logout_redirect_uri": {"http://127.0.0.1:6666/bye"}, "state": {bad}})
			}},
			{"end_session confirm client_id", asPage, func(bad string) reply {
				return e.get("/end_session/confirm", url.Values{"client_id": {bad}, "post_logout_redirect_uri": {"http://127.0.0.1:6666/bye"}})
			}},
			{"login page id", asPage, func(bad string) reply { return e.get("/login", url.Values{"id": {bad}}) }},
			{"login form id", asPage, func(bad string) reply { return e.post("/login", form("id", bad, "email", "a@example.com")) }},
			{"login form email", asPage, func(bad string) reply { return e.post("/login", form("email", bad+"@example.com")) }},
			{"code page id", asPage, func(bad string) reply { return e.get("/login/code", url.Values{"id": {bad}}) }},
			{"code form id", asPage, func(bad string) reply { return e.post("/login/code", form("id", bad, "code", "123456")) }},
			{"code form code", asPage, func(bad string) reply { return e.post("/login/code", form("code", bad)) }},
			{"resend id", asPage, func(bad string) reply { return e.post("/login/resend", form("id", bad)) }},
			{"connector form id", asPage, func(bad string) reply { return e.post("/login/connector", form("id", bad, "connector", "auth0")) }},
			{"connector form connector", asPage, func(bad string) reply { return e.post("/login/connector", form("connector", bad)) }},
			{"authorize callback id", asPage, func(bad string) reply { return e.get("/authorize/callback", url.Values{"id": {bad}}) }},
			{"upstream callback state", asPage, func(bad string) reply {
				return e.get("/callback/auth0", url.Values{"state": {bad}, "code": {"c"}})
			}},
			{"upstream callback code", asPage, func(bad string) reply {
				return e.get("/callback/auth0", url.Values{"state": {"no-such-state"}, "code": {bad}})
			}},
			{"admin get client", asOAuth, func(bad string) reply { return e.adminSend("GET", "/clients/"+url.PathEscape(bad), "") }},
			{"admin update client", asOAuth, func(bad string) reply { return e.adminSend("PATCH", "/clients/"+url.PathEscape(bad), "{}") }},
			{"admin delete client", asOAuth, func(bad string) reply { return e.adminSend("DELETE", "/clients/"+url.PathEscape(bad), "") }},
			{"admin get user", asOAuth, func(bad string) reply { return e.adminSend("GET", "/users/"+url.PathEscape(bad), "") }},
			{"admin disable user", asOAuth, func(bad string) reply {
				return e.adminSend("POST", "/users/"+url.PathEscape(bad)+"/disable", "")
			}},
			{"admin list users after", asOAuth, func(bad string) reply { return e.adminSend("GET", "/users?after="+url.QueryEscape(bad), "") }},
			{"admin unlink connector", asOAuth, func(bad string) reply {
				return e.adminSend("DELETE", user+"/identities?"+url.Values{"connector": {bad}, "subject": {"s"}}.Encode(), "")
			}},
			{"admin create client body", asOAuth, func(bad string) reply {
				return e.adminSend("POST", "/clients", `{"client_id":`+jsonString(bad)+`,"grant_types":["client_credentials"]}`)
			}},
			{"admin create client name", asOAuth, func(bad string) reply {
				return e.adminSend("POST", "/clients", `{"client_id":"fine","name":`+jsonString(bad)+`,"grant_types":["client_credentials"]}`)
			}},
			{"admin link identity subject", asOAuth, func(bad string) reply {
				return e.adminSend("POST", user+"/identities", `{"connector":"otp","subject":`+jsonString(bad)+`}`)
			}},
		}
		for _, c := range cases {
			for _, bad := range badText {
				t.Run(c.name+"/"+bad.name, func(t *testing.T) {
					e.t = t
					logged := len(e.logText())
					r := c.do(bad.value)
					checkRefusal(t, c.format, r)
					if errs := errorLines(e.logText()[logged:]); errs != "" {
						t.Errorf("logged at ERROR:\n%s", errs)
					}
				})
			}
		}
	})
}

// checkRefusal checks that r refuses a request in the endpoint's own
// format.
func checkRefusal(t *testing.T, format string, r reply) {
	t.Helper()
	var oauth struct {
		Error string `json:"error"`
	}
	isJSON := strings.HasPrefix(r.header.Get("Content-Type"), "application/json") && json.Unmarshal([]byte(r.body), &oauth) == nil
	switch format {
	case asPage:
		if r.status < 400 || r.status > 499 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("want a 4xx page, got %d %s: %.300s", r.status, r.header.Get("Content-Type"), r.body)
		}
	case asOAuth:
		if r.status != http.StatusBadRequest || !isJSON || oauth.Error != "invalid_request" {
			t.Errorf("want 400 invalid_request in JSON, got %d %s: %.300s", r.status, r.header.Get("Content-Type"), r.body)
		}
	case asOAuthAny:
		if r.status < 400 || r.status > 499 || !isJSON || oauth.Error == "" {
			t.Errorf("want a 4xx OAuth error in JSON, got %d %s: %.300s", r.status, r.header.Get("Content-Type"), r.body)
		}
	case asRedirect:
		if r.location == nil || r.location.Host != "127.0.0.1:5555" || r.location.Query().Get("error") != "invalid_request" {
			t.Errorf("want an invalid_request redirect to the client, got %d to %v: %.300s", r.status, r.location, r.body)
		}
	}
}

// errorLines returns the lines of log logged at ERROR.
func errorLines(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// Odd paths, under the admin API and elsewhere, neither panic nor give
// the metrics a series of their own: labels come from routes, never from
// what a request sent.
func TestMetrics_OddPathsAddNoSeries(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newBadBytesEnv(t, store)
		paths := func(v string) []string {
			return []string{
				"/clients/" + v, "/clients/" + v + "/rotate-secret", "/users/" + v, "/users/" + v + "/disable",
				"/no-such-route/" + v,
			}
		}
		round := func(values ...string) int {
			for _, v := range values {
				for _, p := range paths(v) {
					e.adminSend("GET", p, "")
					e.adminSend("POST", p, "{}")
				}
				e.send("GET", "/no/such/"+v, nil, nil)
				e.send("GET", "/callback/"+v, nil, nil)
				e.send("GET", "/static/"+v, nil, nil)
			}
			n, _ := e.seriesCount()
			return n
		}
		e.seriesCount() // a scrape is counted once it is answered
		first := round("%ff", "x%00y", "plain-1", "%c0%af")
		if again := round("%fe", "z%00", "plain-2", "plain-3", "%ed%a0%80"); again != first {
			_, series := e.seriesCount()
			t.Errorf("odd paths grew the metrics from %d series to %d:\n%s", first, again, series)
		}
		if errs := errorLines(e.logText()); errs != "" {
			t.Errorf("logged at ERROR:\n%s", errs)
		}
	})
}

// seriesCount counts the series on /metrics that requests to the broker
// name: requests, their latency and storage failures. (Upstream calls are
// labelled by configured hosts, which requests cannot choose.)
func (e *badBytesEnv) seriesCount() (int, string) {
	var series []string
	for line := range strings.Lines(e.send(http.MethodGet, "/metrics", nil, nil).body) {
		for _, name := range []string{"broker_http_requests_total{", "broker_http_request_duration_seconds_count{", "broker_storage_errors_total{"} {
			if strings.HasPrefix(line, name) {
				series = append(series, line[:strings.LastIndexByte(line, ' ')])
			}
		}
	}
	return len(series), strings.Join(series, "\n")
}

// postgresLike is the memory store refusing, as the Postgres store does,
// text that is not UTF-8 or that holds a NUL, in the operations that take
// keys and text from requests. Fuzzing against it in memory finds what
// would be an outage on Postgres, at memory's speed.
type postgresLike struct{ storage.Storage }

func refusedText(ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return fmt.Errorf("postgres-like: %q: %w", s, storage.ErrInvalidText)
		}
	}
	return nil
}

func (s postgresLike) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if err := refusedText(id); err != nil {
		return storage.Client{}, err
	}
	return s.Storage.GetClient(ctx, id)
}

func (s postgresLike) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	if err := refusedText(append([]string{r.ClientID, r.RedirectURI, r.State, r.Nonce, r.LoginHint, r.CodeChallenge}, r.Scopes...)...); err != nil {
		return err
	}
	return s.Storage.CreateAuthRequest(ctx, r)
}

func (s postgresLike) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	if err := refusedText(id); err != nil {
		return storage.AuthRequest{}, err
	}
	return s.Storage.GetAuthRequest(ctx, id)
}

func (s postgresLike) GetAuthRequestByUpstreamState(ctx context.Context, state string) (storage.AuthRequest, error) {
	if err := refusedText(state); err != nil {
		return storage.AuthRequest{}, err
	}
	return s.Storage.GetAuthRequestByUpstreamState(ctx, state)
}

func (s postgresLike) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	if err := refusedText(id); err != nil {
		return storage.AuthRequest{}, err
	}
	return s.Storage.UpdateAuthRequest(ctx, id, func(r storage.AuthRequest) (storage.AuthRequest, error) {
		r, err := update(r)
		if err == nil {
			err = refusedText(r.LoginHint, r.ConnectorID)
		}
		return r, err
	})
}

func (s postgresLike) TakeRateLimitSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	if err := refusedText(key); err != nil {
		return false, 0, err
	}
	return s.Storage.TakeRateLimitSlot(ctx, key, limit, window, now)
}

func (s postgresLike) RateLimited(ctx context.Context, key string, limit int, now time.Time) (bool, time.Duration, error) {
	if err := refusedText(key); err != nil {
		return false, 0, err
	}
	return s.Storage.RateLimited(ctx, key, limit, now)
}

func (s postgresLike) ConsumeJTI(ctx context.Context, jti string, expiresAt time.Time) error {
	if err := refusedText(jti); err != nil {
		return err
	}
	return s.Storage.ConsumeJTI(ctx, jti, expiresAt)
}

// FuzzRequestText sends requests with arbitrary paths, queries, form
// bodies and Basic client ids to every kind of endpoint of a broker whose
// store refuses bad text as Postgres does. Whatever bytes they carry, the
// answer is never a 5xx and nothing is logged at ERROR: bad bytes are bad
// requests, not outages.
func FuzzRequestText(f *testing.F) {
	for _, seed := range []struct{ path, query, body, user string }{
		{"/authorize", "client_id=dev&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=%00", "", ""},
		{"/authorize", "client_id=%ff&response_type=code", "", ""},
		{"/token", "", "grant_type=client_credentials&client_id=%c0%af", ""},
		{"/token", "", "grant_type=client_credentials", "a%00b"},
		{"/introspect", "", "token=x&client_id=%ed%a0%80", ""},
		{"/revoke", "", "token=x", "\xff"},
		{"/end_session", "client_id=%00&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A6666%2Fbye", "", ""},
		{"/end_session/confirm", "client_id=%1b", "", ""},
		{"/login", "id=%ff", "", ""},
		{"/login", "", "id=%00&csrf=x&email=a%40example.com", ""},
		{"/login/code", "id=a%00", "", ""},
		{"/login/resend", "", "id=%ff", ""},
		{"/login/connector", "", "id=x&connector=%00", ""},
		{"/authorize/callback", "id=%ff", "", ""},
		{"/callback/otp", "state=%00&code=x", "", ""},
		{"/admin/v1/clients/\xff", "", "", ""},
		{"/static/\x00", "", "", ""},
		{"/userinfo", "%zz=1", "", ""},
	} {
		f.Add(seed.path, seed.query, seed.body, seed.user)
	}
	shared := newEnv(f, withAdmin, func(c *broker.Config, o *broker.Options) { o.Storage = postgresLike{memory.New()} })
	h := shared.srv.Config.Handler
	f.Fuzz(func(t *testing.T, path, query, body, user string) {
		method := http.MethodGet
		if body != "" {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL.Path, req.URL.RawQuery = "/"+strings.TrimPrefix(path, "/"), query
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if user != "" {
			req.SetBasicAuth(user, "secret")
		}
		logged := len(shared.logText())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q ? %q body %q user %q: status %d: %.300s", method, req.URL.Path, query, body, user, rec.Code, rec.Body)
		}
		if errs := errorLines(shared.logText()[logged:]); errs != "" {
			t.Fatalf("%s %q ? %q body %q user %q: logged at ERROR:\n%s", method, req.URL.Path, query, body, user, errs)
		}
	})
}

// A trusted proxy's X-Forwarded-For names the client, and an IPv6 zone
// in it may hold any bytes a header may: the rate-limit key made from it
// reaches the store, where the edge does not look. It is a refusal or a
// login, never an outage.
func TestBadBytes_ForwardedForIsNotAnOutage(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newBadBytesEnv(t, store, func(c *broker.Config, o *broker.Options) {
			c.HTTP.TrustedProxies = []string{"127.0.0.0/8"}
		})
		// Header values cannot carry controls; the other bad bytes can.
		for _, bad := range []string{"\xff", "\xc0\xaf", "\xed\xa0\x80"} {
			logged := len(e.logText())
			r := e.send(http.MethodPost, "/login", strings.NewReader(url.Values{"id": {e.id}, "csrf": {e.csrf}, "email": {"xff@example.com"}}.Encode()),
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-For": {"fe80::1%" + bad}})
			if r.status >= 500 {
				t.Errorf("X-Forwarded-For zone %q: status %d: %.300s", bad, r.status, r.body)
			}
			if errs := errorLines(e.logText()[logged:]); errs != "" {
				t.Errorf("X-Forwarded-For zone %q: logged at ERROR:\n%s", bad, errs)
			}
		}
	})
}
