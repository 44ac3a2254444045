package backchannel_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/backchannel"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// signer records what it is asked to sign and "signs" it as its payload.
// Notify signs before it hands a delivery to the background, so the test
// reads it once Notify has returned.
type signer struct {
	use keys.Use
	typ string
}

func (s *signer) Sign(use keys.Use, alg, typ string, payload []byte) (string, error) {
	s.use, s.typ = use, typ
	return string(payload), nil
}

func TestNotify_SendsIDKeySignedLogoutTokenAndNothingAfterClose(t *testing.T) {
	got := make(chan string, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.PostFormValue("logout_token")
	}))
	defer rp.Close()
	now := time.Unix(1_800_000_000, 0)
	sig := &signer{}
	n := backchannel.New(backchannel.Options{
		Issuer: "https://broker.example",
		Keys:   sig,
		LogoutURI: func(_ context.Context, id string) (string, error) {
			if id == "rp" {
				return rp.URL, nil
			}
			return "", nil
		},
		Now: func() time.Time { return now },
	})
	s := storage.Session{ID: "sid-1", UserID: "user-1", Clients: []string{"rp", "no-uri"}}
	n.Notify(context.Background(), s)
	var claims map[string]any
	select {
	case token := <-got:
		if err := json.Unmarshal([]byte(token), &claims); err != nil {
			t.Fatalf("logout token %q: %v", token, err)
		}
	default:
		t.Fatal("Notify returned before a quick client got its logout token")
	}
	if sig.use != keys.UseIDToken || sig.typ != "logout+jwt" {
		t.Errorf("signed with use %q typ %q, want the ID-token key and typ logout+jwt", sig.use, sig.typ)
	}
	want := map[string]any{"iss": "https://broker.example", "sub": "user-1", "sid": "sid-1",
		"iat": float64(now.Unix()), "exp": float64(now.Add(2 * time.Minute).Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != "rp" {
		t.Errorf("aud = %v, want [rp]", claims["aud"])
	}
	events, _ := claims["events"].(map[string]any)
	_, hasEvent := events["http://schemas.openid.net/event/backchannel-logout"]
	if jti, _ := claims["jti"].(string); !hasEvent || jti == "" || claims["nonce"] != nil {
		t.Errorf("claims %v: want the back-channel logout event, a jti and no nonce", claims)
	}

	n.Close()
	n.Notify(context.Background(), s)
	select {
	case token := <-got:
		t.Errorf("a logout token was sent after Close: %q", token)
	case <-time.After(100 * time.Millisecond):
	}
}
