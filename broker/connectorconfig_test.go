package broker_test

import (
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
)

// noEnv is an environment with no variables.
func noEnv(string) (string, bool) { return "", false }

// connectorYAML is, per connector type, an entry with every setting the
// type takes besides the common ones.
var connectorYAML = map[string]string{
	"otp": `{ id: c, type: otp, mailer: { type: smtp, addr: "smtp.example.com:587", from: login@example.com,
      username: broker, password: pw, tls: starttls } }`,
	"oidc": `{ id: c, type: oidc, issuer: https://example.okta.com, clientID: ghi, clientSecret: s, scopes: [openid, email],
      trustEmail: true, claims: { email: email, emailVerified: ev, name: name, org: org }, userinfo: true,
      exchangeAudiences: [https://api.example.com] }`,
	"auth0": `{ id: c, type: auth0, issuer: https://tenant.auth0.com/, clientID: abc, clientSecret: s, scopes: [openid],
      trustEmail: true, audience: https://api.example.com, exchangeAudiences: [abc], organization: org_1,
      claims: { email: https://example.com/email }, userinfo: true }`,
	"azuread": `{ id: c, type: azuread, tenant: organizations, allowedTenants: [TENANT-ID], clientID: def, clientSecret: s,
      scopes: [openid], trustEmail: true, exchangeAudiences: [api://x], authority: https://login.example.com,
      acceptV1Tokens: true, v1Authority: https://sts.example.com }`,
	"workos": `{ id: c, type: workos, clientID: client_123, apiKey: k, baseURL: https://workos.example.com,
      accessTokenIssuer: "https://api.workos.com/user_management/client_123", trustEmail: true,
      organization: org_1, allowImpersonation: true }`,
	"legacy": `{ id: c, type: legacy, validateURL: https://platform-api.internal/validate, method: POST,
      tokenIn: header:X-User-Token, fields: { userId: id, email: mail, name: n, emailVerified: ev },
      clientID: broker, clientSecret: s, trustEmail: true, cacheTTL: 30s, cacheSize: 5000 }`,
}

// Every type's settings parse in the file, with the common ones beside
// them, and give the connector its type's Config.
func TestConfig_EveryConnectorTypeParses(t *testing.T) {
	for typ, entry := range connectorYAML {
		entry = strings.Replace(entry, "{ id: c,", "{ id: c, name: C, timeout: 3s, recheckInterval: 2h,", 1)
		if typ != "legacy" {
			entry = strings.Replace(entry, "{ id: c,", "{ id: c, domains: [c.example],", 1)
		}
		c, err := broker.ParseConfig([]byte("connectors:\n  - "+entry+"\n"), noEnv)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		cc := c.Connectors[0]
		if cc.ID != "c" || cc.Type != typ || cc.Name != "C" || cc.Timeout.String() != "3s" || cc.RecheckInterval.String() != "2h0m0s" || cc.Config == nil {
			t.Errorf("%s: parsed %+v", typ, cc)
		}
	}
}

// A setting the connector's type does not take, its own misspelt or
// another type's, is an error that names the connector and the setting.
func TestConfig_ConnectorSettingOfAnotherTypeIsRefused(t *testing.T) {
	foreign := map[string]string{
		"otp": "trustEmail: true", "oidc": "tenant: common", "auth0": "tenant: organizations",
		"azuread": "issuer: https://x.example", "workos": "issuer: https://x.example", "legacy": "mailer: { type: log }",
	}
	for typ, entry := range connectorYAML {
		for _, bad := range []struct{ setting, field string }{
			{"clientSecrett: x", "clientSecrett"},
			{foreign[typ], strings.Split(foreign[typ], ":")[0]},
		} {
			withBad := strings.Replace(entry, "{ id: c,", "{ id: conn-"+typ+", "+bad.setting+",", 1)
			_, err := broker.ParseConfig([]byte("connectors:\n  - "+withBad+"\n"), noEnv)
			if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), `"conn-`+typ+`"`) ||
				!strings.Contains(err.Error(), bad.field) {
				t.Errorf("%s with %s: err %v, want one naming the connector and %s", typ, bad.setting, err, bad.field)
			}
		}
	}
	// Nested settings are decoded as strictly.
	_, err := broker.ParseConfig([]byte("connectors:\n  - { id: okta, type: oidc, issuer: https://o.example, clientID: c, claims: { mail: m } }\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), `"okta"`) || !strings.Contains(err.Error(), "mail") {
		t.Errorf("claims.mail: %v", err)
	}
	_, err = broker.ParseConfig([]byte("connectors:\n  - { id: okta, type: oidc, issuer: https://o.example, clientID: c, scopes: openid }\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), `"okta"`) {
		t.Errorf("scopes of the wrong kind: %v", err)
	}
}

// The settings a type takes are checked when the file is read, not when
// the broker starts.
func TestConfig_ConnectorSettingsAreValidated(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"{ id: a, type: auth0, clientID: c }", "no issuer"},
		{"{ id: e, type: azuread, clientID: c }", "no tenant"},
		{"{ id: w, type: workos, clientID: c }", "API key"},
		{"{ id: m, type: otp, mailer: { type: pigeon } }", `mailer type "pigeon"`},
		{"{ id: x, type: saml }", `type "saml" is not one of otp, oidc, auth0, azuread, workos, legacy`},
	} {
		_, err := broker.ParseConfig([]byte("connectors:\n  - "+tc.entry+"\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.entry, err, tc.want)
		}
	}
}
