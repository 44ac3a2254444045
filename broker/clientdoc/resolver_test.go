package clientdoc_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/clientdoc"
)

// A document client carries the host that served its document, and is
// verified only when that host is a trusted domain or under one.
func TestResolver_DocumentHostAndVerification(t *testing.T) {
	const id = "https://example.com/app/client.json"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"client_id": id, "client_name": "App",
			"redirect_uris": []string{"https://example.com/cb"}})
	}))
	defer srv.Close()
	// Every host is the test server, whose certificate names example.com.
	fetcher := srv.Client()
	fetcher.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	for _, tc := range []struct {
		trusted  []string
		verified bool
	}{
		{nil, false},
		{[]string{"example.com"}, true},
		{[]string{"other.example", "example.com"}, true},
		{[]string{"ample.com"}, false},
		{[]string{"app.example.com"}, false},
	} {
		cfg := clientdoc.Config{Enabled: true, TrustedDomains: tc.trusted}
		cfg.SetDefaults()
		r := clientdoc.New(cfg, clientdoc.Options{HTTPClient: fetcher, Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		c, err := r.Client(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.DocumentHost() != "example.com" || c.Verified() != tc.verified || !c.ThirdParty() || !c.Public() || c.Name() != "App" {
			t.Errorf("trusted %v: host %q verified %v third-party %v public %v name %q", tc.trusted,
				c.DocumentHost(), c.Verified(), c.ThirdParty(), c.Public(), c.Name())
		}
	}
}

func TestConfig_BoundsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*clientdoc.Config)
	}{
		{"timeout", func(c *clientdoc.Config) { c.Timeout = time.Minute }},
		{"maxBytes", func(c *clientdoc.Config) { c.MaxBytes = 1 << 20 }},
		{"cache ages", func(c *clientdoc.Config) { c.MinCacheAge, c.MaxCacheAge = time.Hour, time.Minute }},
		{"allowPrivateHosts", func(c *clientdoc.Config) { c.AllowPrivateHosts = []string{"Bad Host"} }},
		{"trustedDomains", func(c *clientdoc.Config) { c.TrustedDomains = []string{"10.0.0.1"} }},
	} {
		cfg := clientdoc.Config{}
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("defaults: %v", err)
		}
		tc.change(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else if want := "clientMetadataDocuments." + tc.name; tc.name != "cache ages" && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name %s", tc.name, err, want)
		}
	}
}
