package upstream

import (
	"errors"
	"net/mail"
	"strings"
)

// ErrInvalidEmail is returned by NormalizeEmail for anything that is not a
// single plain address.
var ErrInvalidEmail = errors.New("upstream: not an email address")

// NormalizeEmail trims and lower-cases an address and rejects what is not a
// bare address (display names, several addresses, missing domain, a domain
// without a dot, quoted or spaced local parts, more than 254 bytes). It is
// the one form in which the broker stores and compares addresses, whether
// typed on the login page or read from an upstream's answer.
//
// Connectors put "" in Identity.Email when an upstream's address does not
// normalise: an address the broker cannot use is no address, and never
// verified. NormalizeEmail checks only the form; whether anyone receives
// mail there is not its business.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 254 {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", ErrInvalidEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || !strings.Contains(s[at+1:], ".") || strings.ContainsAny(s, " \t\r\n<>\"") {
		return "", ErrInvalidEmail
	}
	return s, nil
}
