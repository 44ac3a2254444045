package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// replicas are two brokers built through the production constructor, each
// with its own Postgres store (own pool), sharing only the database and
// the root secret, behind one issuer as a load balancer would put them.
type replicas struct {
	a, b *env
}

func newReplicas(t *testing.T, opts ...envOption) *replicas {
	t.Helper()
	db := pgtest.New(t)
	secret := broker.NewEphemeralRootSecret()
	mailer := &testenv.Mailer{}
	a := newEnv(t, append([]envOption{func(c *broker.Config, o *broker.Options) {
		o.Storage, o.Secret, o.Mailer = db.Open(t), secret, mailer
	}}, opts...)...)
	b := newEnv(t, append([]envOption{func(c *broker.Config, o *broker.Options) {
		o.Storage, o.Secret, o.Mailer = db.Open(t), secret, mailer
		c.Issuer = a.issuer // one issuer for the deployment
	}}, opts...)...)
	// Requests go to each replica's own listener; both issue tokens as
	// a.issuer, so tokens are verified through a's discovery.
	a.mailer, b.mailer = mailer, mailer
	return &replicas{a: a, b: b}
}

func TestReplicas_LoginStartedAtAFinishedAtB(t *testing.T) {
	r := newReplicas(t)
	br := testenv.NewBrowser(t, false, r.a.srv.Listener.Addr().String(), r.b.srv.Listener.Addr().String())
	pkce := testenv.NewPKCE()
	page := br.Get(r.a.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n"}))
	form := page.HiddenFields("/login")
	// The email goes to B.
	page = br.Post(r.b.issuer+"/login", url.Values{"id": {form["id"]}, "csrf": {form["csrf"]}, "email": {"rep@example.com"}})
	if !strings.Contains(page.Body, "one-time-code") {
		t.Fatalf("B did not continue A's login: %d %s", page.Status, page.Body)
	}
	// The code goes to A again.
	codeForm := page.HiddenFields("/login/code")
	page = br.Post(r.a.issuer+"/login/code", url.Values{"id": {codeForm["id"]}, "csrf": {codeForm["csrf"]}, "code": {r.a.mailer.LastCode("rep@example.com")}})
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("login did not finish: %d %s", page.Status, page.Body)
	}
	l := loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID}

	// A's code is redeemed at B; B's refresh token refreshed at A.
	tr := r.b.redeem(l)
	if tr.Status != http.StatusOK {
		t.Fatalf("code from A redeemed at B: %d %s", tr.Status, tr.Description)
	}
	c := r.a.verifyIDToken(tr.IDToken, broker.DevClientID)
	next := r.a.refresh("dev", tr.RefreshToken)
	if next.Status != http.StatusOK {
		t.Fatalf("refresh at A of B's token: %s", next.Description)
	}
	if r.a.verifyIDToken(next.IDToken, broker.DevClientID).Subject != c.Subject {
		t.Error("the replicas disagree on the user")
	}
	// Reuse detection across replicas: the old token replayed at B, after
	// the retry window, kills the family at A too.
	r.a.clock.Advance(3 * time.Second)
	r.b.clock.Advance(3 * time.Second)
	if x := r.b.refresh("dev", tr.RefreshToken); x.Error != "invalid_grant" {
		t.Fatalf("reuse at B: %d %q", x.Status, x.Error)
	}
	if x := r.a.refresh("dev", next.RefreshToken); x.Error != "invalid_grant" {
		t.Fatalf("family survived reuse detection at the other replica: %d", x.Status)
	}
}

func TestReplicas_CodeRedeemedOnceAcrossReplicas(t *testing.T) {
	r := newReplicas(t)
	l := r.a.login(r.a.browser(), "race@example.com", authRequest{})
	var wg sync.WaitGroup
	results := make([]tokenResponse, 2)
	start := make(chan struct{})
	for i, e := range []*env{r.a, r.b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = e.redeem(l)
		}()
	}
	close(start)
	wg.Wait()
	// The loser is a replay, which revokes the grant: when it does so
	// before the winner has created its refresh family, the winner is
	// refused too. Either way nothing the winner was given works.
	ok := 0
	for _, res := range results {
		switch {
		case res.Status == http.StatusOK:
			ok++
			if x := r.b.refresh("dev", res.RefreshToken); x.Error != "invalid_grant" {
				t.Errorf("the winner's refresh token after the replay: %d %q; want invalid_grant", x.Status, x.Error)
			}
		case res.Error != "invalid_grant":
			t.Errorf("a redemption: %d %q; want success or invalid_grant", res.Status, res.Error)
		}
	}
	if ok > 1 {
		t.Fatalf("%d of two simultaneous redemptions at two replicas succeeded", ok)
	}
}

func TestReplicas_ConcurrentFirstLoginsMakeOneUser(t *testing.T) {
	r := newReplicas(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerEmail.Count = 100 // eight codes to one address, on purpose
	})
	const n = 8
	type pending struct {
		e    *env
		b    *testenv.Browser
		page *testenv.Page
		pkce testenv.PKCE
		code string
	}
	// Each login reaches the code page in turn (so each code is known);
	// then all codes are entered at once, half at each replica, and the
	// identity is resolved concurrently.
	var logins []pending
	for i := range n {
		e := []*env{r.a, r.b}[i%2]
		b := e.browser()
		page, pkce := e.startLoginPKCE(b, "crowd@example.com")
		logins = append(logins, pending{e, b, page, pkce, e.mailer.LastCode("crowd@example.com")})
	}
	subs := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, l := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p := l.b.Submit(l.page, "/login/code", url.Values{"code": {l.code}})
			if p.Location == nil {
				t.Errorf("login %d: %d", i, p.Status)
				return
			}
			res := loginResult{code: p.Location.Query().Get("code"), pkce: l.pkce, redirectURI: devRedirect, clientID: broker.DevClientID}
			subs[i] = r.a.verifyIDToken(l.e.redeem(res).IDToken, broker.DevClientID).Subject
		}()
	}
	close(start)
	wg.Wait()
	for _, s := range subs {
		if s == "" || s != subs[0] {
			t.Fatalf("simultaneous first logins of one person got different subs: %v", subs)
		}
	}
}

// A cut TCP proxy between the store and Postgres drops every connection
// mid-test: requests fail cleanly with a 5xx, nothing is half-written, and
// the broker recovers by itself.
func TestStorageOutage_FailsCleanlyAndRecovers(t *testing.T) {
	db := pgtest.New(t)
	proxy := testenv.NewTCPProxy(t, db.Addr(t))
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		o.Storage = db.OpenDSN(t, db.DSNVia(t, proxy.Addr()))
	})
	b := e.browser()
	// Another browser: b's session would sign the newcomer in as this user.
	tr := e.redeem(e.login(e.browser(), "outage@example.com", authRequest{}))
	if tr.Status != http.StatusOK {
		t.Fatal(tr.Description)
	}
	page := e.startLogin(b, "newcomer@example.com")

	before := e.rows()
	proxy.Cut() // every connection dies and no new one gets through
	if r := e.refresh("dev", tr.RefreshToken); r.Status != http.StatusServiceUnavailable || r.Error != "temporarily_unavailable" {
		t.Errorf("refresh while the store is down: %d %q, want 503 temporarily_unavailable", r.Status, r.Error)
	}
	p := b.Submit(page, "/login/code", url.Values{"code": {e.mailer.LastCode("newcomer@example.com")}})
	if p.Status != http.StatusServiceUnavailable || p.Location != nil || !strings.Contains(p.Body, "Temporarily unavailable") {
		t.Errorf("login while the store is down: %d %v", p.Status, p.Location)
	}
	resp, err := http.Get(e.issuer + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the store is down: %d", resp.StatusCode)
	}

	proxy.Restore()
	// Nothing half-written: no user or identity appeared in the outage.
	if after := e.rows(); after != before {
		t.Errorf("%d user or identity rows were written during the outage", after-before)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(e.issuer + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("the broker did not recover after the store came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A pool may hand out a connection the cut killed once more before it
	// notices; the client's retry (within the refresh retry window) works.
	for attempt := 1; ; attempt++ {
		r := e.refresh("dev", tr.RefreshToken)
		if r.Status == http.StatusOK {
			break
		}
		if attempt == 3 {
			t.Fatalf("refresh after recovery: %d %s", r.Status, r.Description)
		}
	}
	if tr := e.redeem(e.login(e.browser(), "newcomer@example.com", authRequest{})); tr.Status != http.StatusOK {
		t.Errorf("login after recovery: %d %s", tr.Status, tr.Description)
	}
}
