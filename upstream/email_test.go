package upstream

import (
	"errors"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		"  Alice@Example.COM ":    "alice@example.com",
		"bob+tag@sub.example.org": "bob+tag@sub.example.org",
	}
	for in, want := range good {
		got, err := NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "alice", "alice@", "@example.com", "Alice <alice@example.com>", "a@b.c, d@e.f", "alice@localhost", "a b@example.com"} {
		if got, err := NormalizeEmail(in); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
}
