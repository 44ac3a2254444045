package oidc_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
)

func TestCompleteIdentity_AddsWhatUserinfoSays(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newAuth0(t, f)
	token := f.AccessToken(alice, api)
	id, err := c.VerifyToken(t.Context(), token, upstream.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "" {
		t.Fatalf("the access token itself names email %q", id.Email)
	}

	done, err := c.CompleteIdentity(t.Context(), token, id)
	if err != nil {
		t.Fatal(err)
	}
	if done.Subject != alice.Sub || done.Email != "alice@example.com" || !done.EmailVerified {
		t.Errorf("completed identity = %+v", done)
	}

	// A token userinfo refuses (401) is taken as it is.
	if same, err := c.CompleteIdentity(t.Context(), "not-a-userinfo-token", id); err != nil || same.Email != "" {
		t.Errorf("refused by userinfo: %+v, %v; want the identity unchanged", same, err)
	}
	// An answer about someone else is refused.
	other := id
	other.Subject, other.Claims = "auth0|mallory", map[string]any{"sub": "auth0|mallory"}
	if _, err := c.CompleteIdentity(t.Context(), token, other); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("userinfo about another subject: err = %v, want ErrInvalidToken", err)
	}
	// Userinfo down decides nothing.
	f.FailWith(http.StatusBadGateway)
	if _, err := c.CompleteIdentity(t.Context(), token, id); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("userinfo down: err = %v, want ErrUnavailable", err)
	}
}

func TestCompleteIdentity_EntraIsNotAsked(t *testing.T) {
	f := testenv.NewAzureAD(t)
	c := newAzure(t, f)
	u := entraUser(f)
	u.Email = ""
	token := f.AccessToken(u, f.ClientID)
	id, err := c.VerifyToken(t.Context(), token, upstream.TokenTypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	f.FailWith(http.StatusInternalServerError) // any call would fail
	if same, err := c.CompleteIdentity(t.Context(), token, id); err != nil || same.Subject != id.Subject || same.Email != id.Email {
		t.Errorf("Entra: %+v, %v; want the identity unchanged", same, err)
	}
}
