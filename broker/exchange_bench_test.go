package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres/pgtest"
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// BenchmarkExchange measures one token exchange of an Auth0 access token
// for a user the broker already knows, through the HTTP handler in
// process, per access-token signing algorithm. The upstream's keys are
// fetched once, before timing, as a running broker would have them cached.
// The same token is exchanged over and over, as a service does with the
// token it holds, so its RS256 signature is verified once
// (BenchmarkExchangeNewToken verifies one every time).
func BenchmarkExchange(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) { benchmarkExchange(b, alg, memory.New()) })
	}
}

// BenchmarkExchangeNewToken is BenchmarkExchange/ES256 with a new Auth0
// access token of the same known user each time, signed before timing:
// the RS256 verification of every token counts.
func BenchmarkExchangeNewToken(b *testing.B) {
	auth0, exchange := exchangeBench(b, "ES256", memory.New())
	user := testenv.User{Sub: "auth0|bench"}
	if rec := exchange(exchangeBody(auth0.AccessToken(user, apiAudience))); rec.Code != http.StatusOK {
		b.Fatalf("first exchange: %d %s", rec.Code, rec.Body)
	}
	bodies := make([]string, b.N)
	for i := range bodies {
		// A jti of its own: RS256 signatures of the same claims are
		// the same bytes.
		bodies[i] = exchangeBody(auth0.AccessToken(user, apiAudience, testenv.WithClaim("jti", strconv.Itoa(i))))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, body := range bodies {
		if rec := exchange(body); rec.Code != http.StatusOK {
			b.Fatalf("exchange: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkExchangePostgres is BenchmarkExchange/ES256 on Postgres, where
// the known user is answered from the identity cache: a read per
// exchange would add a round trip to every one.
func BenchmarkExchangePostgres(b *testing.B) {
	benchmarkExchange(b, "ES256", pgtest.NewStore(b))
}

// BenchmarkExchangeFirstTime measures a token exchange for a subject the
// broker has never seen, which creates the user: on Postgres one
// statement, committed durably, per exchange. Its tokens are signed
// before timing.
func BenchmarkExchangeFirstTime(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchmarkExchangeFirstTime(b, memory.New()) })
	b.Run("postgres", func(b *testing.B) { benchmarkExchangeFirstTime(b, pgtest.NewStore(b)) })
}

func benchmarkExchangeFirstTime(b *testing.B, store storage.Storage) {
	auth0, exchange := exchangeBench(b, "ES256", store)
	bodies := make([]string, b.N+1)
	for i := range bodies {
		bodies[i] = exchangeBody(auth0.AccessToken(testenv.User{Sub: fmt.Sprintf("auth0|first-%d", i)}, apiAudience))
	}
	// The first exchange fetches the keys.
	if rec := exchange(bodies[b.N]); rec.Code != http.StatusOK {
		b.Fatalf("first exchange: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if rec := exchange(bodies[i]); rec.Code != http.StatusOK {
			b.Fatalf("exchange: %d %s", rec.Code, rec.Body)
		}
	}
}

// benchmarkExchange exchanges one Auth0 access token over and over, with
// access tokens signed with alg, on store.
func benchmarkExchange(b *testing.B, alg string, store storage.Storage) {
	auth0, exchange := exchangeBench(b, alg, store)
	body := exchangeBody(auth0.AccessToken(testenv.User{Sub: "auth0|bench"}, apiAudience))
	// The first exchange provisions the user and fetches the keys.
	if rec := exchange(body); rec.Code != http.StatusOK {
		b.Fatalf("first exchange: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := exchange(body); rec.Code != http.StatusOK {
			b.Fatalf("exchange: %d %s", rec.Code, rec.Body)
		}
	}
}

// exchangeBench starts a broker on store with an Auth0 connector and an
// exchanging client, access tokens signed with alg, and returns the
// upstream and a function that exchanges one of its tokens through the
// HTTP handler in process: a request with a body from exchangeBody.
func exchangeBench(b *testing.B, alg string, store storage.Storage) (*testenv.Auth0, func(body string) *httptest.ResponseRecorder) {
	auth0 := testenv.NewAuth0(b)
	const issuer = "http://broker.test"
	cfg := broker.DevelopmentConfig(issuer, "127.0.0.1:0")
	cfg.Keys.AccessTokenAlgorithm = alg
	cfg.Connectors = append(cfg.Connectors, broker.ConnectorConfig{
		ID: "auth0", Type: "auth0", Name: "Auth0", RecheckInterval: time.Hour,
		Config: &upoidc.Auth0Config{Issuer: auth0.Issuer,
			ClientID: auth0.ClientID, ClientSecret: auth0.ClientSecret,
			ExchangeAudiences: []string{apiAudience}},
	})
	cfg.Clients = append(cfg.Clients, broker.ClientConfig{
		ID: exchangerID, Secret: exchangerSecret,
		GrantTypes: []string{broker.GrantTokenExchange}, Audiences: []string{apiAudience},
	})
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(context.Background(), cfg, broker.Options{
		Storage: store,
		Secret:  broker.NewEphemeralRootSecret(),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	h := br.Handler()
	return auth0, func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(exchangerID, exchangerSecret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
}

// exchangeBody is the form of an exchange of subjectToken, an access token.
func exchangeBody(subjectToken string) string {
	return url.Values{
		"grant_type":         {tokenExchangeGrant},
		"subject_token":      {subjectToken},
		"subject_token_type": {accessTokenType},
	}.Encode()
}
