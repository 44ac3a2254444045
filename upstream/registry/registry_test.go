package registry_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/idbroker/broker/upstream/registry"
)

// full is, per connector type, every setting the type takes, each set.
var full = map[string]string{
	"otp": `mailer: { type: smtp, addr: "smtp.example.com:587", from: login@example.com, username: broker,
  password: pw, tls: starttls }`,
	"oidc": `{ issuer: https://example.okta.com, clientID: ghi, clientSecret: s, scopes: [openid, email],
  trustEmail: true, claims: { email: mail, emailVerified: ev, name: n, org: o }, userinfo: true,
  exchangeAudiences: [https://api.example.com], acceptsIdentityAssertions: true }`,
	"auth0": `{ issuer: https://tenant.auth0.com/, clientID: abc, clientSecret: s, scopes: [openid],
  trustEmail: true, audience: https://api.example.com, exchangeAudiences: [abc], organization: org_1,
  claims: { email: https://example.com/email, emailVerified: ev, name: n, org: o }, userinfo: true }`,
	"azuread": `{ tenant: organizations, allowedTenants: [TENANT-ID], clientID: def, clientSecret: s,
  scopes: [openid], trustEmail: true, exchangeAudiences: ["api://x"], authority: https://login.example.com,
  acceptV1Tokens: true, v1Authority: https://sts.example.com }`,
	"workos": `{ clientID: client_123, apiKey: k, baseURL: https://workos.example.com,
  accessTokenIssuer: "https://api.workos.com/user_management/client_123", trustEmail: true,
  organization: org_1, allowImpersonation: true }`,
	"legacy": `{ validateURL: https://platform-api.internal/validate, method: POST, tokenIn: header:X-User-Token,
  fields: { userId: id, email: mail, name: n, emailVerified: ev }, clientID: broker, clientSecret: s,
  trustEmail: true, cacheTTL: 30s, cacheSize: 5000 }`,
}

func node(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// Every type decodes from YAML through the registry, every setting it
// takes set, valid, and the same typed config comes back from its JSON.
func TestRegistry_EveryTypeDecodesAndRoundTripsThroughJSON(t *testing.T) {
	if got := registry.Types(); len(got) != len(full) {
		t.Fatalf("types %v, but the test has %d", got, len(full))
	}
	for _, typ := range registry.Types() {
		t.Run(typ, func(t *testing.T) {
			cfg, err := registry.DecodeYAML(typ, node(t, full[typ]))
			if err != nil {
				t.Fatal(err)
			}
			if got := registry.TypeOf(cfg); got != typ {
				t.Errorf("TypeOf = %q", got)
			}
			if err := cfg.Validate("c"); err != nil {
				t.Errorf("Validate: %v", err)
			}
			v := reflect.ValueOf(cfg).Elem()
			for i := range v.NumField() {
				if tag := v.Type().Field(i).Tag.Get("yaml"); tag != "-" && allZero(v.Field(i)) {
					t.Errorf("setting %s is not set by the example: is it decoded?", tag)
				}
			}
			data, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := registry.DecodeJSON(typ, data)
			if err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			if !reflect.DeepEqual(back, cfg) {
				t.Errorf("JSON round trip:\n got %+v\nwant %+v\n(%s)", back, cfg, data)
			}
			// Its JSON names settings as the YAML does.
			var keys map[string]any
			if err := json.Unmarshal(data, &keys); err != nil {
				t.Fatal(err)
			}
			for k := range keys {
				if !strings.Contains(full[typ], k+":") {
					t.Errorf("JSON key %q is not a YAML setting", k)
				}
			}
		})
	}
}

// allZero is whether v, or any field of it when it is a struct, is zero.
func allZero(v reflect.Value) bool {
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			if allZero(v.Field(i)) {
				return true
			}
		}
		return false
	}
	return v.IsZero()
}

// A setting the type does not take is refused, naming it, and naming the
// types that do take it when it is another type's.
func TestRegistry_UnknownAndForeignSettingsAreRefused(t *testing.T) {
	foreign := map[string]string{
		"otp": "trustEmail", "oidc": "tenant", "auth0": "tenant", "azuread": "issuer",
		"workos": "audience", "legacy": "mailer",
	}
	for _, typ := range registry.Types() {
		t.Run(typ, func(t *testing.T) {
			for _, field := range []string{"noSuchSetting", foreign[typ]} {
				_, err := registry.DecodeYAML(typ, node(t, "{ "+field+": x }"))
				var fe *registry.FieldError
				if !errors.As(err, &fe) || fe.Field != field || fe.Type != typ || !strings.Contains(err.Error(), field) {
					t.Errorf("%s: err %v, want a FieldError naming it", field, err)
				}
				if field == foreign[typ] && len(fe.TakenBy) == 0 {
					t.Errorf("%s: err %v does not say which types take it", field, err)
				}
			}
			if _, err := registry.DecodeJSON(typ, []byte(`{"noSuchSetting": 1}`)); err == nil || !strings.Contains(err.Error(), "noSuchSetting") {
				t.Errorf("JSON with an unknown key: %v", err)
			}
		})
	}
	if _, err := registry.DecodeYAML("saml", nil); err == nil || !strings.Contains(err.Error(), `"saml"`) {
		t.Errorf("unknown type: %v", err)
	}
}

// Aliases expand, but not into themselves or without bound.
func TestRegistry_AliasesAreBounded(t *testing.T) {
	cfg, err := registry.DecodeYAML("oidc", node(t, "{ scopes: &s [openid], exchangeAudiences: *s }"))
	if err != nil || !reflect.DeepEqual(reflect.ValueOf(cfg).Elem().FieldByName("ExchangeAudiences").Interface(), []string{"openid"}) {
		t.Errorf("alias: %+v, %v", cfg, err)
	}
	laughs := "{ a: &a [x, x, x, x, x, x, x, x, x, x], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], " +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], scopes: [*d, *d, *d] }"
	if _, err := registry.DecodeYAML("oidc", node(t, laughs)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("nested aliases: %v, want them refused as too large", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("&a { scopes: *a }"), &doc); err == nil {
		if _, err := registry.DecodeYAML("oidc", doc.Content[0]); err == nil || !strings.Contains(err.Error(), "alias") {
			t.Errorf("an alias to itself: %v", err)
		}
	}
}

// Every secret a type lists is one of its string settings, so the
// broker's sealing and masking find it where the JSON has it.
func TestRegistry_SecretsAreStringSettings(t *testing.T) {
	for _, typ := range registry.Types() {
		cfg, err := registry.New(typ)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range registry.Secrets(typ) {
			var node any
			if err := json.Unmarshal(data, &node); err != nil {
				t.Fatal(err)
			}
			for _, part := range strings.Split(sec.Path, ".") {
				m, _ := node.(map[string]any)
				node = m[part]
			}
			if _, ok := node.(string); !ok {
				t.Errorf("%s: secret %q is not a string setting (%T)", typ, sec.Path, node)
			}
		}
	}
}
