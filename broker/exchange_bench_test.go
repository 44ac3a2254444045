package broker_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
func BenchmarkExchange(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) { benchmarkExchange(b, alg, memory.New()) })
	}
}

// BenchmarkExchangePostgres is BenchmarkExchange/ES256 on Postgres, where
// the known user is answered from the identity cache: a read per
// exchange would add a round trip to every one.
func BenchmarkExchangePostgres(b *testing.B) {
	benchmarkExchange(b, "ES256", pgtest.NewStore(b))
}

// benchmarkExchange exchanges one Auth0 access token over and over, with
// access tokens signed with alg, on store.
func benchmarkExchange(b *testing.B, alg string, store storage.Storage) {
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
	body := url.Values{
		"grant_type":         {tokenExchangeGrant},
		"subject_token":      {auth0.AccessToken(testenv.User{Sub: "auth0|bench"}, apiAudience)},
		"subject_token_type": {accessTokenType},
	}.Encode()
	exchange := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(exchangerID, exchangerSecret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	// The first exchange provisions the user and fetches the keys.
	if rec := exchange(); rec.Code != http.StatusOK {
		b.Fatalf("first exchange: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := exchange(); rec.Code != http.StatusOK {
			b.Fatalf("exchange: %d %s", rec.Code, rec.Body)
		}
	}
}
