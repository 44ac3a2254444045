package mcp_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// person signs in at a broker's pages the way someone at a browser
// would, over HTTP with a cookie jar: the email form, the one-time code
// from the mailbox, the consent page when the broker shows one (Allow),
// then the redirect to the client, which it does not follow. A second
// sign-in in the same browser is answered by the broker's session (with
// or without the consent page). It is an
// auth.AuthorizationCodeFetcher; its errors are returned, never fatal,
// since the SDK calls it from its own goroutines.
type person struct {
	email  string
	broker string // the broker's host:port: the only host whose redirects are followed
	mail   *testenv.Mailer
	client *http.Client
	// consents counts the consent pages the person answered.
	consents atomic.Int64
}

func newPerson(email, issuer string, mail *testenv.Mailer) *person {
	u, _ := url.Parse(issuer)
	jar, _ := cookiejar.New(nil)
	p := &person{email: email, broker: u.Host, mail: mail}
	p.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == p.broker {
			return nil
		}
		return http.ErrUseLastResponse
	}}
	return p
}

// Fetch is the auth.AuthorizationCodeFetcher.
func (p *person) Fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	at, err := p.signIn(ctx, args.URL)
	if err != nil {
		return nil, err
	}
	q := at.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("the broker refused: %s: %s", e, q.Get("error_description"))
	}
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}

// signIn follows authorizeURL through the broker's pages and returns the
// redirect back to the client. It answers each page by what it is: the
// email form, the code form, the consent page; the broker's session may
// skip any of them.
func (p *person) signIn(ctx context.Context, authorizeURL string) (*url.URL, error) {
	page, err := p.do(ctx, http.MethodGet, authorizeURL, nil)
	for step := 0; err == nil && page.location == nil; step++ {
		switch {
		case step == 5:
			return nil, fmt.Errorf("the sign-in ended on %s (%d), not at the client: %.300s", page.url, page.status, page.body)
		case strings.HasPrefix(page.url.Path, "/consent"):
			p.consents.Add(1)
			page, err = p.allow(ctx, page)
		case page.has("/login/code"):
			code := p.mail.LastCode(p.email)
			if code == "" {
				return nil, fmt.Errorf("no code was mailed to %s", p.email)
			}
			page, err = p.submit(ctx, page, "/login/code", url.Values{"code": {code}})
		default:
			page, err = p.submit(ctx, page, "/login", url.Values{"email": {p.email}})
		}
	}
	if err != nil {
		return nil, err
	}
	return page.location, nil
}

// allow answers the consent page with its Allow button: the button
// whose name, value or label says allow, in a form posting to /consent...
// (one form with a button per decision, or a form per decision).
func (p *person) allow(ctx context.Context, page *loaded) (*loaded, error) {
	for _, f := range page.forms() {
		if !strings.HasPrefix(f.action.Path, "/consent") {
			continue
		}
		for _, b := range buttonRE.FindAllStringSubmatch(f.inner, -1) {
			name, value, label := attr(b[1], "name"), attr(b[1], "value"), b[2]
			if !strings.Contains(strings.ToLower(name+" "+value+" "+label+" "+f.action.Path), "allow") {
				continue
			}
			if name != "" {
				f.fields.Set(name, value)
			}
			return p.do(ctx, http.MethodPost, page.url.ResolveReference(f.action).String(), f.fields)
		}
	}
	return nil, fmt.Errorf("the consent page %s has no Allow button: %.500s", page.url, page.body)
}

// loaded is a response the person's browser stopped at.
type loaded struct {
	status   int
	url      *url.URL
	location *url.URL // a redirect away from the broker, not followed
	body     string
}

func (p *person) do(ctx context.Context, method, target string, form url.Values) (*loaded, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	page := &loaded{status: resp.StatusCode, url: resp.Request.URL, body: string(b)}
	if loc, err := resp.Location(); err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		page.location = loc
	}
	return page, nil
}

// submit posts page's form whose action is action, with its hidden
// fields and values.
func (p *person) submit(ctx context.Context, page *loaded, action string, values url.Values) (*loaded, error) {
	if page.location != nil {
		return nil, fmt.Errorf("redirected to %s instead of the page with %s", page.location, action)
	}
	for _, f := range page.forms() {
		if f.action.Path != action {
			continue
		}
		for k, v := range values {
			f.fields[k] = v
		}
		return p.do(ctx, http.MethodPost, page.url.ResolveReference(f.action).String(), f.fields)
	}
	return nil, fmt.Errorf("page %s (%d) has no form posting to %s: %.300s", page.url, page.status, action, page.body)
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRE  = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*>`)
	buttonRE = regexp.MustCompile(`(?s)<button([^>]*)>(.*?)</button>`)
)

// form is a form of a page: where it posts, its hidden fields, and its
// inner HTML.
type form struct {
	action *url.URL
	fields url.Values
	inner  string
}

// has reports whether the page has a form posting to path.
func (page *loaded) has(path string) bool {
	for _, f := range page.forms() {
		if f.action.Path == path {
			return true
		}
	}
	return false
}

// forms are the page's forms, in order.
func (page *loaded) forms() []form {
	var out []form
	for _, m := range formRE.FindAllStringSubmatch(page.body, -1) {
		act, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			continue
		}
		fields := url.Values{}
		for _, in := range inputRE.FindAllString(m[2], -1) {
			fields.Set(attr(in, "name"), attr(in, "value"))
		}
		out = append(out, form{action: act, fields: fields, inner: m[2]})
	}
	return out
}

// attr is the value of attribute name in the tag, unescaped.
func attr(tag, name string) string {
	m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestPerson_AllowsOnConsentPages holds the test's person to what a
// consent page may look like: one form with a button per decision, or a
// form per decision, with its CSRF field.
func TestPerson_AllowsOnConsentPages(t *testing.T) {
	pages := map[string]string{
		"one form": `<form method="post" action="/consent?id=r1"><input type="hidden" name="csrf" value="c&amp;1">` +
			`<button type="submit" name="decision" value="deny">Deny</button><button type="submit" name="decision" value="allow">Allow</button></form>`,
		"a form per decision": `<form method="post" action="/consent/deny"><input type="hidden" name="csrf" value="c&amp;1"><button>Deny</button></form>` +
			`<form method="post" action="/consent/allow"><input type="hidden" name="csrf" value="c&amp;1"><button>Allow</button></form>`,
	}
	for name, body := range pages {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					io.WriteString(w, body)
					return
				}
				r.ParseForm()
				allowed := r.PostForm.Get("decision") == "allow" || r.URL.Path == "/consent/allow"
				if r.PostForm.Get("csrf") != "c&1" || !allowed {
					http.Error(w, "refused "+r.URL.String()+" "+r.PostForm.Encode(), http.StatusForbidden)
					return
				}
				http.Redirect(w, r, redirectURL+"?code=granted", http.StatusFound)
			}))
			defer srv.Close()
			p := newPerson(userEmail, srv.URL, nil)
			page, err := p.do(context.Background(), http.MethodGet, srv.URL+"/consent?id=r1", nil)
			if err != nil {
				t.Fatal(err)
			}
			page, err = p.allow(context.Background(), page)
			if err != nil || page.location == nil || page.location.Query().Get("code") != "granted" {
				t.Fatalf("allow: %v, %+v", err, page)
			}
		})
	}
}
