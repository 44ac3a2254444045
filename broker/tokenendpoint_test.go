package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

// Token exchange is answered by the broker's own handler at /token, under
// the same CORS rules as the library's grants: a registered origin is
// named in the answer, any other is not.
func TestExchange_AnswerFollowsCORSRules(t *testing.T) {
	u := newExchange(t, func(c *broker.Config, o *broker.Options) {
		c.Clients[0].AllowedOrigins = []string{"https://spa.example.com"}
	})
	subject := u.auth0.AccessToken(testenv.User{Sub: "auth0|cors"}, apiAudience)
	for origin, want := range map[string]string{"https://spa.example.com": "https://spa.example.com", "https://evil.example": ""} {
		form := url.Values{"grant_type": {tokenExchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessTokenType}}
		req, _ := http.NewRequest(http.MethodPost, u.issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		req.SetBasicAuth(exchangerID, exchangerSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange from %s: %d", origin, resp.StatusCode)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("exchange from %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}
