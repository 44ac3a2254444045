package storagetest

import (
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

// consentTests are the suite's tests of storage.Consents.
var consentTests = []struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
}{
	{"Consent/GrantAddsScopes", testConsentGrant},
	{"Consent/ConcurrentGrantsKeepEveryScope", testConsentConcurrentGrants},
	{"Consent/RevokeEndsWhatTheClientHolds", testConsentRevoke},
	{"Consent/GoWithTheirUserAndClient", testConsentCascades},
}

func consent(userID, clientID, resource string, scopes ...string) storage.Consent {
	return storage.Consent{UserID: userID, ClientID: clientID, Resource: resource, Scopes: scopes, GrantedAt: t0}
}

func testConsentGrant(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u, other := familyUser(t, s), orgUser(t, s, "other").ID
	_, err := s.GetConsent(ctx, u, "mcp", "")
	wantErr(t, "GetConsent(none)", err, storage.ErrNotFound)

	got, err := s.GrantConsent(ctx, consent(u, "mcp", "", "openid", "email"))
	wantErr(t, "GrantConsent", err, nil)
	wantEqual(t, "granted", got, consent(u, "mcp", "", "email", "openid"))
	later := consent(u, "mcp", "", "profile", "openid")
	later.GrantedAt = t0.Add(time.Hour)
	got, err = s.GrantConsent(ctx, later)
	wantErr(t, "GrantConsent(more scopes)", err, nil)
	want := consent(u, "mcp", "", "email", "openid", "profile")
	want.GrantedAt = later.GrantedAt
	wantEqual(t, "granted again", got, want)
	got, err = s.GetConsent(ctx, u, "mcp", "")
	wantErr(t, "GetConsent", err, nil)
	wantEqual(t, "stored", got, want)
	if !got.Covers([]string{"openid", "profile"}) || got.Covers([]string{"openid", "admin"}) {
		t.Fatalf("Covers of %v is wrong", got.Scopes)
	}
	got.Scopes[0] = "X"
	got, _ = s.GetConsent(ctx, u, "mcp", "")
	wantEqual(t, "stored after its copy was changed", got, want)

	for _, c := range []storage.Consent{
		consent(u, "mcp", "https://mcp.example.com/mcp", "tools:call"),
		consent(u, "agent", "", "openid"),
		consent(other, "mcp", "", "openid"),
	} {
		_, err := s.GrantConsent(ctx, c)
		wantErr(t, "GrantConsent("+c.ClientID+" "+c.Resource+")", err, nil)
	}
	list, err := s.ListConsents(ctx, u)
	wantErr(t, "ListConsents", err, nil)
	wantEqual(t, "list", list, []storage.Consent{
		consent(u, "agent", "", "openid"),
		want,
		consent(u, "mcp", "https://mcp.example.com/mcp", "tools:call"),
	})

	_, err = s.GrantConsent(ctx, consent("00000000-0000-4000-8000-000000000000", "mcp", "", "openid"))
	wantErr(t, "GrantConsent(unknown user)", err, storage.ErrNotFound)
	_, err = s.GrantConsent(ctx, consent("not-a-uuid", "mcp", "", "openid"))
	wantErr(t, "GrantConsent(not a UUID)", err, storage.ErrNotFound)
	_, err = s.GetConsent(ctx, "not-a-uuid", "mcp", "")
	wantErr(t, "GetConsent(not a UUID)", err, storage.ErrNotFound)
	list, err = s.ListConsents(ctx, "not-a-uuid")
	wantErr(t, "ListConsents(not a UUID)", err, nil)
	if len(list) != 0 {
		t.Fatalf("ListConsents(not a UUID) = %v", list)
	}
}

func testConsentConcurrentGrants(t *testing.T, s storage.Storage) {
	u := familyUser(t, s)
	scopes := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	errs := make([]error, len(scopes))
	race(len(scopes), func(i int) {
		_, errs[i] = s.GrantConsent(t.Context(), consent(u, "mcp", "", scopes[i]))
	})
	for _, err := range errs {
		wantErr(t, "GrantConsent", err, nil)
	}
	got, err := s.GetConsent(t.Context(), u, "mcp", "")
	wantErr(t, "GetConsent", err, nil)
	wantEqual(t, "scopes", got.Scopes, scopes)
}

func testConsentRevoke(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u, other := familyUser(t, s), orgUser(t, s, "other").ID
	for _, c := range []storage.Consent{
		consent(u, "mcp", "", "openid"),
		consent(u, "mcp", "https://mcp.example.com/mcp", "tools:call"),
		consent(u, "agent", "", "openid"),
		consent(other, "mcp", "", "openid"),
	} {
		_, err := s.GrantConsent(ctx, c)
		wantErr(t, "GrantConsent", err, nil)
	}
	fam := func(id, userID, clientID string) storage.RefreshFamily {
		f := family(id, userID, "")
		f.ClientID = clientID
		return f
	}
	for _, f := range []storage.RefreshFamily{
		fam("f-mcp", u, "mcp"), fam("f-agent", u, "agent"), fam("f-other", other, "mcp"),
	} {
		wantErr(t, "CreateRefreshFamily("+f.ID+")", s.CreateRefreshFamily(ctx, f, hash(f.ID)), nil)
	}
	code := func(name, userID, clientID string) storage.AuthCode {
		c := authCode(name, userID)
		c.ClientID = clientID
		return c
	}
	for _, c := range []storage.AuthCode{
		code("unredeemed", u, "mcp"), code("redeemed", u, "mcp"),
		code("agent-code", u, "agent"), code("other-code", other, "mcp"),
	} {
		issueCode(t, s, c)
	}
	_, err := s.RedeemAuthCode(ctx, hash("redeemed"), "g-redeemed", t0)
	wantErr(t, "RedeemAuthCode", err, nil)

	until := t0.Add(time.Hour)
	revoked, err := s.RevokeConsent(ctx, u, "mcp", until)
	wantErr(t, "RevokeConsent", err, nil)
	wantEqual(t, "revoked", revoked, []storage.Consent{
		consent(u, "mcp", "", "openid"),
		consent(u, "mcp", "https://mcp.example.com/mcp", "tools:call"),
	})
	_, err = s.RevokeConsent(ctx, u, "mcp", until)
	wantErr(t, "RevokeConsent(again)", err, storage.ErrNotFound)
	list, err := s.ListConsents(ctx, u)
	wantErr(t, "ListConsents", err, nil)
	wantEqual(t, "left", list, []storage.Consent{consent(u, "agent", "", "openid")})

	_, err = rotate(s, t, "f-mcp", "f-mcp-2", 0, t0)
	wantErr(t, "rotate the client's family", err, storage.ErrRevoked)
	_, err = s.AccessTokenUser(ctx, storage.AccessTokenRef{ID: "j1", GrantID: "f-mcp", UserID: u, IssuedAt: t0, ExpiresAt: t0.Add(time.Minute)})
	wantErr(t, "access token of the client's family", err, storage.ErrRevoked)
	for _, id := range []string{"f-agent", "f-other"} {
		_, err = rotate(s, t, id, id+"-2", 0, t0)
		wantErr(t, "rotate "+id, err, nil)
	}
	_, err = s.RedeemAuthCode(ctx, hash("unredeemed"), "g-late", t0)
	wantErr(t, "redeem an unredeemed code of the client", err, storage.ErrNotFound)
	// A redemption under way when the consent went issues nothing.
	err = s.CreateRefreshFamily(ctx, fam("g-redeemed", u, "mcp"), hash("g-redeemed"))
	wantErr(t, "family of a code redeemed before the revocation", err, storage.ErrRevoked)
	for _, name := range []string{"agent-code", "other-code"} {
		_, err = s.RedeemAuthCode(ctx, hash(name), "g-"+name, t0)
		wantErr(t, "redeem "+name, err, nil)
	}

	_, err = s.RevokeConsent(ctx, "not-a-uuid", "mcp", until)
	wantErr(t, "RevokeConsent(not a UUID)", err, storage.ErrNotFound)
}

func testConsentCascades(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u, other := familyUser(t, s), orgUser(t, s, "other").ID
	wantErr(t, "CreateClient", s.CreateClient(ctx, client("mcp")), nil)
	for _, c := range []storage.Consent{
		consent(u, "mcp", "", "openid"), consent(u, "agent", "", "openid"),
		consent(other, "mcp", "", "openid"), consent(other, "agent", "", "openid"),
	} {
		_, err := s.GrantConsent(ctx, c)
		wantErr(t, "GrantConsent", err, nil)
	}
	wantErr(t, "DeleteClient", s.DeleteClient(ctx, "mcp"), nil)
	wantErr(t, "DeleteUser", s.DeleteUser(ctx, u), nil)
	list, err := s.ListConsents(ctx, other)
	wantErr(t, "ListConsents", err, nil)
	wantEqual(t, "left", list, []storage.Consent{consent(other, "agent", "", "openid")})
	list, err = s.ListConsents(ctx, u)
	wantErr(t, "ListConsents(deleted user)", err, nil)
	if len(list) != 0 {
		t.Fatalf("a deleted user's consents: %v", list)
	}
}
