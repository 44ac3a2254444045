package safefetch_test

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/safefetch"
)

func TestClient_RefusesWhatItMustBeforeSendingAnything(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/here", http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	get := func(c *http.Client, url string) error {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	guarded := safefetch.NewClient(safefetch.Options{Timeout: time.Second, RootCAs: roots})
	if err := get(guarded, srv.URL+"/here"); !errors.Is(err, safefetch.ErrNotPublic) {
		t.Errorf("loopback without the allow-list: %v, want ErrNotPublic", err)
	}
	if err := get(guarded, "http://example.com/"); !errors.Is(err, safefetch.ErrNotHTTPS) {
		t.Errorf("http URL: %v, want ErrNotHTTPS", err)
	}
	if n := served.Load(); n != 0 {
		t.Errorf("the server was asked %d times", n)
	}

	allowed := safefetch.NewClient(safefetch.Options{Timeout: time.Second, RootCAs: roots, AllowHosts: []string{"127.0.0.1"}})
	if err := get(allowed, srv.URL+"/here"); err != nil {
		t.Errorf("allowed host: %v", err)
	}
	if err := get(allowed, srv.URL+"/moved"); !errors.Is(err, safefetch.ErrRedirect) {
		t.Errorf("redirect: %v, want ErrRedirect", err)
	}
	if n := served.Load(); n != 2 {
		t.Errorf("the server was asked %d times, want 2 (the redirect not followed)", n)
	}
}
