package broker_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

// s256 is the S256 code challenge of verifier (RFC 7636 section 4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// RFC 7636 section 4.2: an S256 code_challenge is the base64url encoding,
// without padding, of a SHA-256: 43 characters. Anything else is refused
// at /authorize, back at the client's redirect URI, before a login starts.
func TestAuthorize_MalformedCodeChallengeRefused(t *testing.T) {
	e := newEnv(t)
	valid := testenv.NewPKCE().Challenge
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	// The last of 43 characters carries 4 bits of the hash and 2 zero bits.
	nonCanonical := valid[:42] + string(alphabet[strings.IndexByte(alphabet, valid[42])|1])
	challenges := map[string]string{
		"short!!":                      "short!!",
		"42 characters":                valid[:42],
		"44 characters":                valid + "A",
		"padded":                       valid + "=",
		"standard base64":              "+/" + valid[2:],
		"a verifier's characters":      "." + valid[1:],
		"non-canonical last character": nonCanonical,
		"128 characters":               strings.Repeat("a", 128),
		"non-ASCII":                    valid[:41] + "é",
	}
	clients := []struct{ id, redirect string }{{broker.DevClientID, devRedirect}, {backendID, backendRedirect}}
	for name, challenge := range challenges {
		for _, c := range clients {
			page := e.browser().Get(e.authorizeURL(authRequest{
				clientID: c.id, redirectURI: c.redirect, pkce: testenv.PKCE{Challenge: challenge}, state: "s1",
			}))
			if page.Location == nil {
				t.Errorf("%s, client %s: want a redirect to the client with an error, got %d", name, c.id, page.Status)
				continue
			}
			q := page.Location.Query()
			want, _ := url.Parse(c.redirect)
			if page.Location.Host != want.Host || q.Get("error") != "invalid_request" || q.Get("state") != "s1" || q.Get("iss") != e.issuer {
				t.Errorf("%s, client %s: redirected to %s", name, c.id, page.Location)
			}
		}
	}
}

// RFC 7636 section 4.1: a code_verifier is 43 to 128 characters of
// [A-Za-z0-9-._~]. One outside that is invalid_grant even when its S256
// matches the challenge: it is never compared, and the code dies.
func TestCodeExchange_VerifierOutsideRFC7636Refused(t *testing.T) {
	e := newEnv(t)
	refused := map[string]string{
		"3 characters":   "abc",
		"42 characters":  strings.Repeat("a", 42),
		"129 characters": strings.Repeat("a", 129),
		"a space":        strings.Repeat("a", 42) + " ",
		"a plus":         strings.Repeat("a", 42) + "+",
		"a slash":        strings.Repeat("a", 42) + "/",
		"non-ASCII":      strings.Repeat("a", 42) + "é",
	}
	i := 0
	for name, verifier := range refused {
		i++
		pkce := testenv.PKCE{Verifier: verifier, Challenge: s256(verifier)}
		l := e.login(e.browser(), fmt.Sprintf("verifier-%d@example.com", i), authRequest{pkce: pkce})
		if r := e.redeem(l); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
			t.Errorf("verifier with %s: %d %q; want invalid_grant", name, r.Status, r.Error)
		}
	}
	unreserved := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	for _, verifier := range []string{strings.Repeat("a", 43), (unreserved + unreserved)[:128]} {
		i++
		pkce := testenv.PKCE{Verifier: verifier, Challenge: s256(verifier)}
		l := e.login(e.browser(), fmt.Sprintf("verifier-%d@example.com", i), authRequest{pkce: pkce})
		if r := e.redeem(l); r.Status != http.StatusOK {
			t.Errorf("verifier of %d characters: %d %q %s", len(verifier), r.Status, r.Error, r.Description)
		}
	}
}

// FuzzPKCE sends arbitrary code challenges to /authorize and arbitrary
// code verifiers to /token, each verifier with a code whose challenge is
// the verifier's own S256, so that only the verifier's form decides. A
// challenge is accepted exactly when it is 43 characters of canonical
// unpadded base64url (RFC 7636 section 4.2), a verifier exactly when it
// is 43 to 128 unreserved characters (section 4.1); nothing is a 5xx.
// A wrong verifier is invalid_grant, unless it is not text at all
// (input.go), which makes the request malformed: invalid_request.
func FuzzPKCE(f *testing.F) {
	valid := testenv.NewPKCE()
	for _, seed := range [][2]string{
		{valid.Challenge, valid.Verifier},
		{"short!!", "abc"},
		{valid.Challenge + "=", strings.Repeat("a", 42)},
		{"\n" + valid.Challenge[1:], strings.Repeat("~", 128)},
		{valid.Challenge[:42] + "B", strings.Repeat("a", 129)},
		{"", ""},
		{strings.Repeat("A", 43), strings.Repeat("a", 42) + "é"},
		{"+/" + valid.Challenge[2:], " " + valid.Verifier},
	} {
		f.Add(seed[0], seed[1])
	}
	shared := newEnv(f)
	// A signed-in browser: /authorize answers with a code at once.
	signedIn := shared.browser()
	shared.login(signedIn, "fuzz-pkce@example.com", authRequest{})
	challengeForm := regexp.MustCompile(`^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$`)
	verifierForm := regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

	f.Fuzz(func(t *testing.T, challenge, verifier string) {
		e := *shared // the same broker, reporting to this iteration's t
		e.t = t
		b := e.browser()
		b.Client.Jar = signedIn.Client.Jar

		page := b.Get(e.authorizeURL(authRequest{pkce: testenv.PKCE{Challenge: challenge}, scope: "openid", state: "s"}))
		if page.Status >= 500 {
			t.Fatalf("code_challenge %q: status %d", challenge, page.Status)
		}
		accepted := page.Location != nil && page.Location.Query().Get("code") != ""
		if want := challengeForm.MatchString(challenge); accepted != want {
			t.Fatalf("code_challenge %q: accepted %v, want %v (landed at %v, status %d)", challenge, accepted, want, page.Location, page.Status)
		}

		page = b.Get(e.authorizeURL(authRequest{pkce: testenv.PKCE{Challenge: s256(verifier)}, scope: "openid", state: "s"}))
		if page.Location == nil || page.Location.Query().Get("code") == "" {
			t.Fatalf("no code for the challenge of %q: %d at %v", verifier, page.Status, page.Location)
		}
		r := e.token(url.Values{
			"grant_type":    {"authorization_code"},
			"code":          {page.Location.Query().Get("code")},
			"redirect_uri":  {devRedirect},
			"client_id":     {broker.DevClientID},
			"code_verifier": {verifier},
		}, "", "")
		if r.Status >= 500 {
			t.Fatalf("code_verifier %q: status %d", verifier, r.Status)
		}
		if want := verifierForm.MatchString(verifier); (r.Status == http.StatusOK) != want {
			t.Fatalf("code_verifier %q: %d %q, want success %v", verifier, r.Status, r.Error, want)
		}
		// Text that is not UTF-8 or holds a control character is a
		// malformed request, refused at the edge before any grant is
		// looked at; any other wrong verifier costs the code.
		want := "invalid_grant"
		if !utf8.ValidString(verifier) || strings.ContainsFunc(verifier, func(r rune) bool { return r < 0x20 }) {
			want = "invalid_request"
		}
		if r.Status != http.StatusOK && r.Error != want {
			t.Fatalf("code_verifier %q: %d %q, want %s", verifier, r.Status, r.Error, want)
		}
	})
}
