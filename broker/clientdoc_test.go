package broker_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// docRedirect is the redirect URI the metadata documents of these tests
// list.
const docRedirect = "http://127.0.0.1:7777/cb"

// docServer is an https server of client ID metadata documents on
// loopback, counting the requests for each path.
type docServer struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex // guards handlers and hits
	handlers map[string]http.HandlerFunc
	hits     map[string]int
}

func newDocServer(t testing.TB) *docServer {
	d := &docServer{t: t, handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.hits[r.URL.Path]++
		h := d.handlers[r.URL.Path]
		d.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

// url is the client id of the document at path.
func (d *docServer) url(path string) string { return d.srv.URL + path }

func (d *docServer) handle(path string, h http.HandlerFunc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handlers[path] = h
}

// serve answers path with doc as JSON, with the headers given as
// name, value pairs.
func (d *docServer) serve(path string, doc any, header ...string) {
	body, err := json.Marshal(doc)
	if err != nil {
		d.t.Fatal(err)
	}
	d.handle(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Write(body)
	})
}

func (d *docServer) hitsOf(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[path]
}

// publicDoc is a good document of a public client for the client id of
// path.
func (d *docServer) publicDoc(path string) map[string]any {
	return map[string]any{
		"client_id":                  d.url(path),
		"client_name":                "Agent Desktop",
		"redirect_uris":              []string{docRedirect},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
}

// authRequestCounting counts the auth requests the broker stores.
type authRequestCounting struct {
	storage.Storage
	created atomic.Int64
}

func (s *authRequestCounting) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	s.created.Add(1)
	return s.Storage.CreateAuthRequest(ctx, r)
}

// docEnv is a broker that takes client ID metadata documents, trusting
// the document server's certificate and allowing its loopback host.
type docEnv struct {
	*env
	docs  *docServer
	store *authRequestCounting
}

func newDocEnv(t *testing.T, opts ...envOption) *docEnv {
	d := &docEnv{docs: newDocServer(t), store: &authRequestCounting{Storage: memory.New()}}
	roots := x509.NewCertPool()
	roots.AddCert(d.docs.srv.Certificate())
	withDocs := func(c *broker.Config, o *broker.Options) {
		c.ClientMetadataDocuments.Enabled = true
		c.ClientMetadataDocuments.AllowPrivateHosts = []string{"127.0.0.1"}
		c.ClientMetadataDocuments.TrustedDomains = []string{"agents.example.com"}
		c.ClientMetadataDocuments.Timeout = time.Second
		o.ClientDocumentRoots = roots
		o.Storage = d.store
	}
	d.env = newEnv(t, append([]envOption{withDocs}, opts...)...)
	return d
}

// authorizeAs starts a login for the client id at redirect in a new
// browser, and returns the page the browser gets.
func (d *docEnv) authorizeAs(clientID, redirect string) *testenv.Page {
	d.t.Helper()
	return d.browser().Get(d.authorizeURL(authRequest{clientID: clientID, redirectURI: redirect, pkce: testenv.NewPKCE(), state: "s"}))
}

// assertRefusedPage checks that /authorize answered with a 4xx page, not
// a redirect to the client, and stored no auth request.
func (d *docEnv) assertRefusedPage(p *testenv.Page, storedBefore int64) {
	d.t.Helper()
	if p.Status < 400 || p.Status > 499 || p.Location != nil || !strings.Contains(p.Body, "<h1>") {
		d.t.Errorf("want a 4xx page, got %d (location %v): %.300s", p.Status, p.Location, p.Body)
	}
	if n := d.store.created.Load() - storedBefore; n != 0 {
		d.t.Errorf("a refused authorization stored %d auth requests", n)
	}
}

// A client whose client_id is the URL of its metadata document logs a
// person in with PKCE, gets tokens issued to that URL, and refreshes
// them; discovery and RFC 8414 metadata say such ids are supported.
func TestClientDocument_LoginIssuesTokensToTheDocumentClient(t *testing.T) {
	d := newDocEnv(t)
	id := d.docs.url("/agent/client.json")
	d.docs.serve("/agent/client.json", d.docs.publicDoc("/agent/client.json"))

	l := d.login(d.browser(), "ada@example.com", authRequest{thirdParty: true, clientID: id, redirectURI: docRedirect})
	tr := d.redeem(l)
	if tr.Status != http.StatusOK || tr.AccessToken == "" || tr.RefreshToken == "" || tr.IDToken == "" {
		t.Fatalf("redeem: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	if c := d.tokenClaims(tr.AccessToken); c["client_id"] != id {
		t.Errorf("access token client_id %v, want %s", c["client_id"], id)
	}
	if c := d.verifyIDToken(tr.IDToken, id); c.Email != "ada@example.com" {
		t.Errorf("ID token email %q", c.Email)
	}
	if rt := d.refresh(id, tr.RefreshToken); rt.Status != http.StatusOK || rt.AccessToken == "" {
		t.Errorf("refresh: %d %s %s", rt.Status, rt.Error, rt.Description)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		var meta map[string]any
		d.getJSON(path, "", &meta)
		if meta["client_id_metadata_document_supported"] != true {
			t.Errorf("%s: client_id_metadata_document_supported = %v", path, meta["client_id_metadata_document_supported"])
		}
	}

	// Without the setting an https client id is an unknown client, and
	// discovery does not offer documents.
	plain := newEnv(t)
	var meta map[string]any
	plain.getJSON("/.well-known/oauth-authorization-server", "", &meta)
	if _, ok := meta["client_id_metadata_document_supported"]; ok {
		t.Error("discovery offers metadata documents while they are disabled")
	}
	p := plain.browser().Get(plain.authorizeURL(authRequest{clientID: id, redirectURI: docRedirect, pkce: testenv.NewPKCE()}))
	if p.Status != http.StatusBadRequest || p.Location != nil {
		t.Errorf("disabled: want a 400 page, got %d %v", p.Status, p.Location)
	}
	if d.docs.hitsOf("/agent/client.json") != 1 {
		t.Errorf("the document was fetched %d times, want 1 (cached)", d.docs.hitsOf("/agent/client.json"))
	}
}

// Every document the draft or the broker refuses, and every fetch that
// fails, is a 4xx page at /authorize: the client cannot be trusted with a
// redirect. Nothing is stored.
func TestClientDocument_RefusalsAtAuthorizeAreAPage(t *testing.T) {
	d := newDocEnv(t)
	docs := d.docs
	with := func(path string, change func(doc map[string]any)) string {
		doc := docs.publicDoc(path)
		change(doc)
		docs.serve(path, doc)
		return docs.url(path)
	}
	docs.serve("/target.json", docs.publicDoc("/target.json"))
	docs.handle("/redirects.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, docs.url("/target.json"), http.StatusFound)
	})
	docs.handle("/html.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		body, _ := json.Marshal(docs.publicDoc("/html.json"))
		w.Write(body)
	})
	docs.handle("/garbage.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"client_id": "`))
	})
	docs.handle("/slow.json", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	docs.handle("/stream.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"padding": "`))
		chunk := []byte(strings.Repeat("x", 1024))
		for range 1024 { // a megabyte, unless the reader hangs up first
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	docs.handle("/gone.json", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusGone) })
	for _, tc := range []struct {
		name     string
		id       string
		redirect string
		reason   string // what the log says
	}{
		{"client_id differs from the URL", with("/mismatch.json", func(doc map[string]any) { doc["client_id"] = docs.url("/other.json") }), docRedirect, "is not the URL it was fetched from"},
		{"redirect_uri not in the document", with("/good.json", func(map[string]any) {}), "http://127.0.0.1:7777/other", "the redirect_uri is not one registered"},
		{"loopback redirect_uri on another port", docs.url("/good.json"), "http://127.0.0.1:7778/cb", "the redirect_uri is not one registered"},
		{"redirect to another document", docs.url("/redirects.json"), docRedirect, "redirects are not followed"},
		{"not JSON by content type", docs.url("/html.json"), docRedirect, "is not application/json"},
		{"not JSON", docs.url("/garbage.json"), docRedirect, "is not a JSON object"},
		{"not 200", docs.url("/gone.json"), docRedirect, "410 Gone, not 200 OK"},
		{"oversized", with("/big.json", func(doc map[string]any) { doc["padding"] = strings.Repeat("x", 6000) }), docRedirect, "more than 5120"},
		{"oversized, streamed without a length", docs.url("/stream.json"), docRedirect, "the document is more than 5120 bytes"},
		{"client_secret_post", with("/secretpost.json", func(doc map[string]any) { doc["token_endpoint_auth_method"] = "client_secret_post" }), docRedirect, `token_endpoint_auth_method \"client_secret_post\" is not allowed`},
		{"client_secret", with("/secret.json", func(doc map[string]any) { doc["client_secret"] = "s3cret" }), docRedirect, "the document has client_secret"},
		{"no client_name", with("/noname.json", func(doc map[string]any) { delete(doc, "client_name") }), docRedirect, "client_name must be"},
		{"no redirect_uris", with("/noredirects.json", func(doc map[string]any) { delete(doc, "redirect_uris") }), docRedirect, "redirect_uris is missing"},
		{"javascript: redirect_uri", with("/script.json", func(doc map[string]any) { doc["redirect_uris"] = []string{"javascript:alert(1)"} }), "javascript:alert(1)", `redirect_uris: \"javascript:alert(1)\" must be an https URL`},
		{"client_credentials grant", with("/machine.json", func(doc map[string]any) {
			doc["grant_types"] = []string{"authorization_code", "client_credentials"}
		}), docRedirect, `grant_types: \"client_credentials\" is not supported`},
		{"admin scope", with("/admin.json", func(doc map[string]any) { doc["scope"] = "openid admin" }), docRedirect, `scope: \"admin\" is never given`},
		{"private_key_jwt without keys", with("/nokeys.json", func(doc map[string]any) { doc["token_endpoint_auth_method"] = "private_key_jwt" }), docRedirect, "private_key_jwt needs jwks_uri or jwks"},
		{"javascript: logo_uri", with("/logo.json", func(doc map[string]any) { doc["logo_uri"] = "javascript:alert(1)" }), docRedirect, `logo_uri \"javascript:alert(1)\" must be an https URL`},
		{"no document there", docs.url("/missing.json"), docRedirect, "404 Not Found, not 200 OK"},
		{"http client id", "http://127.0.0.1/client.json", docRedirect, "is not registered"},
		{"client id without a path", docs.srv.URL, docRedirect, "must have a path"},
		{"client id with dot segments", docs.srv.URL + "/a/../good.json", docRedirect, "must not have . or .. path segments"},
		{"client id with a query", docs.url("/good.json") + "?v=1", docRedirect, "must not have a query"},
		{"client id with user information", strings.Replace(docs.url("/good.json"), "https://", "https://user@", 1), docRedirect, "must not have user information"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := d.store.created.Load()
			p := d.authorizeAs(tc.id, tc.redirect)
			d.assertRefusedPage(p, before)
			if !strings.Contains(d.logText(), tc.reason) {
				t.Errorf("the log does not say %q", tc.reason)
			}
		})
	}
	if docs.hitsOf("/target.json") != 0 {
		t.Error("the broker followed a redirect")
	}

	// A slow server costs the request its timeout (1s here), no more.
	start := time.Now()
	before := d.store.created.Load()
	d.assertRefusedPage(d.authorizeAs(docs.url("/slow.json"), docRedirect), before)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a slow document server held /authorize for %s", took)
	}
}

// A document whose host resolves to an address that is not public is
// refused before any connection is made, unless the operator allows the
// host; the allow-list names hosts, so another loopback address is still
// refused.
func TestClientDocument_PrivateAddressesAreNotDialled(t *testing.T) {
	d := newDocEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	for _, id := range []string{
		"https://" + ln.Addr().String() + "/client.json",
		"https://10.0.0.1/client.json",
		"https://169.254.169.254/latest/meta-data.json",
		"https://[::1]:" + strings.Split(ln.Addr().String(), ":")[1] + "/client.json",
		"https://localhost:" + strings.Split(ln.Addr().String(), ":")[1] + "/client.json",
	} {
		before := d.store.created.Load()
		start := time.Now()
		d.assertRefusedPage(d.authorizeAs(id, docRedirect), before)
		if took := time.Since(start); took > 900*time.Millisecond {
			t.Errorf("%s: refused after %s, as if dialled until the timeout", id, took)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the broker connected %d times to a private address", n)
	}
	if !strings.Contains(d.logText(), "not a public one") {
		t.Error("the log does not say why the address was refused")
	}
}

// A document is fetched again only when its caching headers say so:
// max-age keeps it (within the configured bounds), no-store keeps it for
// no time, concurrent logins share one fetch, and a refusal is the
// answer for a few seconds only.
func TestClientDocument_CachedAsItsHeadersSay(t *testing.T) {
	d := newDocEnv(t)
	docs := d.docs
	docs.serve("/cached.json", docs.publicDoc("/cached.json"), "Cache-Control", "public, max-age=600")
	docs.serve("/nostore.json", docs.publicDoc("/nostore.json"), "Cache-Control", "no-store")
	docs.serve("/forever.json", docs.publicDoc("/forever.json"), "Cache-Control", "max-age=31536000")
	authorize := func(path string) {
		t.Helper()
		if p := d.authorizeAs(docs.url(path), docRedirect); p.Status != http.StatusOK {
			t.Fatalf("%s: authorize answered %d: %.300s", path, p.Status, p.Body)
		}
	}

	authorize("/cached.json")
	authorize("/cached.json")
	if n := docs.hitsOf("/cached.json"); n != 1 {
		t.Errorf("max-age=600: fetched %d times within it, want 1", n)
	}
	d.clock.Advance(601 * time.Second)
	authorize("/cached.json")
	if n := docs.hitsOf("/cached.json"); n != 2 {
		t.Errorf("max-age=600: fetched %d times once it passed, want 2", n)
	}

	authorize("/nostore.json")
	authorize("/nostore.json")
	if n := docs.hitsOf("/nostore.json"); n != 2 {
		t.Errorf("no-store: fetched %d times for two logins, want 2", n)
	}

	// Expires, less the answer's Date, when there is no max-age.
	docs.serve("/expires.json", docs.publicDoc("/expires.json"), "Expires", time.Now().Add(10*time.Minute).UTC().Format(http.TimeFormat))
	authorize("/expires.json")
	d.clock.Advance(9 * time.Minute)
	authorize("/expires.json")
	if n := docs.hitsOf("/expires.json"); n != 1 {
		t.Errorf("Expires in 10 minutes: fetched %d times within them, want 1", n)
	}
	d.clock.Advance(2 * time.Minute)
	authorize("/expires.json")
	if n := docs.hitsOf("/expires.json"); n != 2 {
		t.Errorf("Expires in 10 minutes: fetched %d times once they passed, want 2", n)
	}

	// A year's max-age is held to maxCacheAge (24h).
	authorize("/forever.json")
	d.clock.Advance(24*time.Hour + time.Second)
	authorize("/forever.json")
	if n := docs.hitsOf("/forever.json"); n != 2 {
		t.Errorf("max-age of a year: fetched %d times over a day, want 2", n)
	}

	// Logins that ask while a fetch runs wait for it and share it.
	release := make(chan struct{})
	body, _ := json.Marshal(docs.publicDoc("/held.json"))
	docs.handle("/held.json", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- d.authorizeAs(docs.url("/held.json"), docRedirect).Status
		}()
	}
	for docs.hitsOf("/held.json") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the others arrive meanwhile
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a login sharing the fetch got %d", s)
		}
	}
	if n := docs.hitsOf("/held.json"); n != 1 {
		t.Errorf("8 concurrent logins fetched the document %d times, want 1", n)
	}

	// A refused document is fetched again after a few seconds, not
	// before, and not kept refused once it is fixed.
	bad := docs.publicDoc("/fixed.json")
	bad["client_id"] = docs.url("/other.json")
	docs.serve("/fixed.json", bad, "Cache-Control", "max-age=3600")
	before := d.store.created.Load()
	d.assertRefusedPage(d.authorizeAs(docs.url("/fixed.json"), docRedirect), before)
	docs.serve("/fixed.json", docs.publicDoc("/fixed.json"))
	d.assertRefusedPage(d.authorizeAs(docs.url("/fixed.json"), docRedirect), before)
	if n := docs.hitsOf("/fixed.json"); n != 1 {
		t.Errorf("a refused document was fetched %d times within seconds, want 1", n)
	}
	d.clock.Advance(6 * time.Second)
	authorize("/fixed.json")
}

// At the token endpoint a client whose document cannot be used is
// invalid_client (RFC 6749 section 5.2), 401 with a challenge, and the
// code it would have redeemed issues nothing.
func TestClientDocument_UnusableDocumentAtTokenIsInvalidClient(t *testing.T) {
	d := newDocEnv(t)
	docs := d.docs
	id := docs.url("/changing.json")
	docs.serve("/changing.json", docs.publicDoc("/changing.json"), "Cache-Control", "max-age=60")
	l := d.login(d.browser(), "grace@example.com", authRequest{thirdParty: true, clientID: id, redirectURI: docRedirect})

	// The document goes bad before the code is redeemed.
	bad := docs.publicDoc("/changing.json")
	bad["token_endpoint_auth_method"] = "client_secret_basic"
	docs.serve("/changing.json", bad)
	d.clock.Advance(61 * time.Second)
	tr := d.redeem(l)
	if tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" || tr.Header.Get("WWW-Authenticate") == "" || tr.AccessToken != "" {
		t.Fatalf("redeem with a bad document: %d %q %q (challenge %q)", tr.Status, tr.Error, tr.Description, tr.Header.Get("WWW-Authenticate"))
	}

	// A client id whose document was never there, at every endpoint
	// that authenticates clients.
	missing := docs.url("/missing.json")
	for _, path := range []string{"/token", "/revoke"} {
		resp := d.postForm(path, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "token": {"x"}, "client_id": {missing}}, "", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with an unusable document: %d, want 401", path, resp.StatusCode)
		}
	}
}

// A document client that names private_key_jwt and a jwks_uri
// authenticates at the token endpoint with an assertion signed by a key
// from there, fetched as safely as its document; without one, or with
// another key, it is invalid_client, and so is a jwks_uri at a private
// address (the client's failure, not the broker's: never a 503).
func TestClientDocument_PrivateKeyJWTWithJWKSURI(t *testing.T) {
	d := newDocEnv(t)
	docs := d.docs
	key, other := newClientKey(t, "doc-key-1"), newClientKey(t, "doc-key-1")
	docs.handle("/keys.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(key.jwks)
	})
	confidential := func(path, jwksURI string) string {
		doc := docs.publicDoc(path)
		doc["token_endpoint_auth_method"] = "private_key_jwt"
		doc["jwks_uri"] = jwksURI
		docs.serve(path, doc)
		return docs.url(path)
	}
	id := confidential("/service.json", docs.url("/keys.json"))
	redeem := func(l loginResult, assertion string) tokenResponse {
		t.Helper()
		form := map[string][]string{"grant_type": {"authorization_code"}, "code": {l.code}, "redirect_uri": {l.redirectURI},
			"code_verifier": {l.pkce.Verifier}, "client_id": {l.clientID}}
		if assertion != "" {
			form["client_assertion_type"] = []string{assertionType}
			form["client_assertion"] = []string{assertion}
		}
		return d.token(form, "", "")
	}

	// Confidential or not, a third-party client uses PKCE.
	p := d.browser().Get(d.authorizeURL(authRequest{clientID: id, redirectURI: docRedirect, noPKCE: true, state: "s"}))
	if p.Location == nil || p.Location.Query().Get("error") != "invalid_request" {
		t.Errorf("without PKCE: want invalid_request at the client, got %d %v", p.Status, p.Location)
	}

	l := d.login(d.browser(), "hopper@example.com", authRequest{thirdParty: true, clientID: id, redirectURI: docRedirect})
	for name, assertion := range map[string]string{
		"no assertion":     "",
		"another key":      other.assertion(t, id, d.issuer, time.Minute),
		"another audience": key.assertion(t, id, "https://elsewhere.example.com", time.Minute),
	} {
		if tr := redeem(l, assertion); tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
			t.Errorf("%s: %d %q %q, want 401 invalid_client", name, tr.Status, tr.Error, tr.Description)
		}
	}
	tr := redeem(l, key.assertion(t, id, d.issuer, time.Minute))
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("redeem with a good assertion: %d %q %q", tr.Status, tr.Error, tr.Description)
	}
	if c := d.tokenClaims(tr.AccessToken); c["client_id"] != id {
		t.Errorf("access token client_id %v, want %s", c["client_id"], id)
	}

	private := confidential("/private-keys.json", "https://10.0.0.1/keys.json")
	l = d.login(d.browser(), "hopper@example.com", authRequest{thirdParty: true, clientID: private, redirectURI: docRedirect})
	if tr := redeem(l, key.assertion(t, private, d.issuer, time.Minute)); tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
		t.Errorf("jwks_uri at a private address: %d %q %q, want 401 invalid_client", tr.Status, tr.Error, tr.Description)
	}
	if !strings.Contains(d.logText(), "10.0.0.1") {
		t.Error("the log does not say why the key set was refused")
	}
}

// The configuration file's clientMetadataDocuments section: off by
// default, the draft's defaults when on, and a bad bound named.
func TestConfig_ClientMetadataDocuments(t *testing.T) {
	c, err := broker.ParseConfig([]byte("issuer: https://auth.example.com\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.ClientMetadataDocuments; d.Enabled || d.MaxBytes != 5120 || d.Timeout != 5*time.Second || d.MinCacheAge != time.Minute || d.MaxCacheAge != 24*time.Hour {
		t.Errorf("defaults: %+v", d)
	}
	c, err = broker.ParseConfig([]byte("clientMetadataDocuments: { enabled: true, trustedDomains: [agents.example.com], allowPrivateHosts: [127.0.0.1], timeout: 2s }\n"), noEnv)
	if err != nil || !c.ClientMetadataDocuments.Enabled || c.ClientMetadataDocuments.Timeout != 2*time.Second {
		t.Errorf("enabled: %+v, %v", c.ClientMetadataDocuments, err)
	}
	for _, bad := range []string{"timeout: 1m", "maxBytes: 1000000", "minCacheAge: 48h", "trustedDomains: [Agents.Example.com]", "allowPrivateHosts: [\"a b\"]", "redirects: true"} {
		_, err := broker.ParseConfig([]byte("clientMetadataDocuments: { enabled: true, "+bad+" }\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), strings.Split(bad, ":")[0]) {
			t.Errorf("%s: error %v does not name the setting", bad, err)
		}
	}
}

// A metadata document client is third-party: it may ask for a
// registered resource that accepts third parties, with the scopes its
// document lists, and is invalid_target for one that does not.
func TestClientDocument_ResourcesMustAcceptThirdParties(t *testing.T) {
	d := newDocEnv(t, withResources)
	doc := d.docs.publicDoc("/mcp-client.json")
	doc["scope"] = "openid email offline_access files:read tools:read"
	d.docs.serve("/mcp-client.json", doc)
	id := d.docs.url("/mcp-client.json")

	p := d.browser().Get(d.authorizeURL(authRequest{clientID: id, redirectURI: docRedirect, pkce: testenv.NewPKCE(), state: "s",
		scope: "openid tools:read", extra: map[string][]string{"resource": {mcpA}}}))
	if p.Location == nil || p.Location.Query().Get("error") != "invalid_target" {
		t.Errorf("a resource closed to third parties: want invalid_target at the client, got %d %v", p.Status, p.Location)
	}

	l := d.login(d.browser(), "lin@example.com", authRequest{thirdParty: true, clientID: id, redirectURI: docRedirect,
		scope: "openid offline_access files:read", extra: map[string][]string{"resource": {mcpB}}})
	wantToken(t, "code for B", d.redeem(l), mcpB, "files:read", 15*time.Minute)
}

// A no-store document is fetched again at /token, to authenticate the
// client; once it has, nothing looks the client up again, so a document
// that disappears while the tokens are being issued cannot make a
// request whose code is already spent a 5xx.
func TestClientDocument_TokenRequestFetchesANoStoreDocumentOnce(t *testing.T) {
	d := newDocEnv(t)
	docs := d.docs
	path := "/vanishing.json"
	id := docs.url(path)
	body, err := json.Marshal(docs.publicDoc(path))
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int32
	var limit atomic.Int32
	limit.Store(1 << 30)
	docs.handle(path, func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) > limit.Load() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
	l := d.login(d.browser(), "vera@example.com", authRequest{thirdParty: true, clientID: id, redirectURI: docRedirect})
	// From now on the document answers once more, then never.
	limit.Store(served.Load() + 1)
	tr := d.redeem(l)
	if tr.Status != http.StatusOK || tr.AccessToken == "" || tr.IDToken == "" {
		t.Fatalf("redeem with a document served once more: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
}

// Any visitor can make the broker fetch a URL by naming it as a client
// id, so fetches count per client address: past fetchRateLimit, a new
// document is not fetched and /authorize answers 429; cached documents
// and other addresses are unaffected.
func TestClientDocument_FetchesAreLimitedPerClientAddress(t *testing.T) {
	d := newDocEnv(t, func(c *broker.Config, o *broker.Options) {
		c.ClientMetadataDocuments.FetchRateLimit = ratelimit.Limit{Count: 2, Window: time.Minute}
	})
	docs := d.docs
	for _, p := range []string{"/one.json", "/two.json", "/three.json"} {
		docs.serve(p, docs.publicDoc(p), "Cache-Control", "max-age=600")
	}
	for _, p := range []string{"/one.json", "/two.json"} {
		if page := d.authorizeAs(docs.url(p), docRedirect); page.Status != http.StatusOK {
			t.Fatalf("%s: %d: %.300s", p, page.Status, page.Body)
		}
	}
	page := d.authorizeAs(docs.url("/three.json"), docRedirect)
	if page.Status != http.StatusTooManyRequests || page.Location != nil {
		t.Fatalf("third new document from one address: %d (location %v), want a 429 page", page.Status, page.Location)
	}
	if n := docs.hitsOf("/three.json"); n != 0 {
		t.Errorf("the document past the limit was fetched %d times", n)
	}
	// A document already cached costs no fetch.
	if page := d.authorizeAs(docs.url("/one.json"), docRedirect); page.Status != http.StatusOK {
		t.Errorf("cached document past the limit: %d", page.Status)
	}
}
