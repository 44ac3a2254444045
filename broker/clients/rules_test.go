package clients_test

import (
	"slices"
	"testing"

	"github.com/idbroker/broker/broker/clients"
)

func TestSelfDescribedGrantTypes(t *testing.T) {
	for _, c := range []struct {
		named []string
		want  []string // nil: refused
	}{
		{nil, []string{"authorization_code"}},
		{[]string{"refresh_token", "authorization_code", "refresh_token"}, []string{"authorization_code", "refresh_token"}},
		{[]string{}, nil},
		{[]string{"refresh_token"}, nil},
		{[]string{"authorization_code", "client_credentials"}, nil},
		{[]string{"implicit"}, nil},
	} {
		got, err := clients.SelfDescribedGrantTypes(c.named)
		if c.want == nil {
			if err == nil {
				t.Errorf("%q: accepted as %q, want refused", c.named, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.named, got, err, c.want)
		}
	}
}
