package main

import (
	"testing"

	"github.com/google/uuid"
	"github.com/idbroker/broker/upstream"
)

// FuzzParseImportLine feeds arbitrary lines to the import parser: it must
// never panic, and what it accepts must be what the store expects: a
// canonical UUID, a normalised email, complete identities.
func FuzzParseImportLine(f *testing.F) {
	for _, seed := range []string{
		`{"id":"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f","email":"Ada@Example.com","email_verified":true,"name":"Ada","identities":[{"connector":"auth0","subject":"auth0|ada"}]}`,
		`{"id":"7F1C1F6E-3B7A-4C57-9D0E-1A2B3C4D5E6F"}`,
		`{"id":"{7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f}","email":"a@b.co"}`,
		`{"id":"nope"}`,
		`{"id":"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f","email_verified":true}`,
		`{"id":"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f","identities":[{"connector":""}]}`,
		`{"id":"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f"} {"id":"x"}`,
		`{"id":"7f1c1f6e-3b7a-4c57-9d0e-1a2b3c4d5e6f","extra":1}`,
		`[]`, `null`, `"`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		u, err := parseImportLine(line)
		if err != nil {
			if _, ok := err.(*lineError); !ok {
				t.Fatalf("error %v is not a lineError", err)
			}
			return
		}
		if id, err := uuid.Parse(u.ID); err != nil || id.String() != u.ID {
			t.Fatalf("accepted id %q is not a canonical UUID", u.ID)
		}
		if u.Email != "" {
			if n, err := upstream.NormalizeEmail(u.Email); err != nil || n != u.Email {
				t.Fatalf("accepted email %q is not normalised", u.Email)
			}
		}
		if u.EmailVerified && u.Email == "" {
			t.Fatal("accepted email_verified without an email")
		}
		for _, ii := range u.Identities {
			if ii.Connector == "" || ii.Subject == "" {
				t.Fatalf("accepted an incomplete identity %+v", ii)
			}
		}
	})
}
