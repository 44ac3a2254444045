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

	l := d.login(d.browser(), "ada@example.com", authRequest{clientID: id, redirectURI: docRedirect})
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
