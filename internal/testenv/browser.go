package testenv

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser is a minimal browser for driving login pages over HTTP: it keeps
// cookies, follows redirects within the sites it trusts, and stops at the
// first redirect elsewhere (a client's redirect URI), which it reports.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// NewBrowser returns a browser that follows redirects only to hosts in
// follow (host:port). With insecure set it trusts any TLS certificate
// (for httptest.NewTLSServer).
func NewBrowser(t testing.TB, insecure bool, follow ...string) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	c := &http.Client{
		Jar:       jar,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			for _, h := range follow {
				if req.URL.Host == h {
					return nil
				}
			}
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &Browser{t: t, Client: c}
}

// Page is a response a browser landed on.
type Page struct {
	Status   int
	URL      *url.URL // where the page came from
	Location *url.URL // a redirect the browser did not follow, or nil
	Body     string
	Header   http.Header
}

func (b *Browser) do(req *http.Request) *Page {
	b.t.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatalf("browser: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &Page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(body), Header: resp.Header}
	if loc, err := resp.Location(); err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		p.Location = loc
	}
	return p
}

// Get loads a URL.
func (b *Browser) Get(rawURL string) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// Submit posts a form on page to its action, with the page's hidden
// fields and the given values.
func (b *Browser) Submit(p *Page, action string, values url.Values) *Page {
	b.t.Helper()
	form := url.Values{}
	for name, value := range p.HiddenFields(action) {
		form.Set(name, value)
	}
	for k, v := range values {
		form[k] = v
	}
	return b.Post(p.URL.ResolveReference(&url.URL{Path: action}).String(), form)
}

// Post posts a form.
func (b *Browser) Post(rawURL string, form url.Values) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// HiddenFields returns the hidden inputs of the first form posting to action.
func (p *Page) HiddenFields(action string) map[string]string {
	fields := map[string]string{}
	for _, m := range formRE.FindAllStringSubmatch(p.Body, -1) {
		if html.UnescapeString(m[1]) != action {
			continue
		}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			fields[h[1]] = html.UnescapeString(h[2])
		}
		return fields
	}
	return fields
}

// PKCE is a verifier and its S256 challenge.
type PKCE struct {
	Verifier  string
	Challenge string
}

// NewPKCE returns a fresh verifier and challenge. The verifier is 32
// random bytes in base64url, 43 characters, as RFC 7636 section 4.1
// recommends: the shortest a broker accepts.
func NewPKCE() PKCE {
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}
