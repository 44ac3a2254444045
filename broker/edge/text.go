package edge

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Request text is checked at the edge. Every parameter the broker reads
// may end up as a storage key or in a stored record, and Postgres refuses
// text that is not UTF-8 or that holds a NUL: left to the store, a byte
// typed by anyone becomes a 503 and an ERROR that pages an operator. No
// parameter of OAuth, OpenID Connect or the login forms has a use for
// control characters either (RFC 6749 appendix A limits its own to
// printable ASCII), so a request carrying any is refused as malformed,
// in the format of the endpoint it was sent to.

// ValidText reports whether s is text a request may carry: UTF-8 (not
// overlong, no surrogates) without C0 control characters, NUL among
// them.
func ValidText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return false
		}
	}
	return utf8.ValidString(s)
}

// ValidName reports whether s is text that may name something a person
// is shown (an administrator's names and identifiers, a client's
// client_name on the consent page): ValidText, without DEL and the C1
// controls, which no name has a use for, and without the bidirectional
// embeddings, overrides and isolates, with which a name can be made to
// read as another ("Helpful \u202egnp.exe" shows as "Helpful exe.png").
func ValidName(s string) bool {
	return ValidText(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
	})
}

// BadParam returns the name of a parameter in v whose name or a value is
// not valid text, and whether there is one. The name is one the request
// may be told and the log may hold: itself valid text.
func BadParam(v url.Values) (string, bool) {
	for name, values := range v {
		if !ValidText(name) {
			return "a parameter name", true
		}
		for _, value := range values {
			if !ValidText(value) {
				return name, true
			}
		}
	}
	return "", false
}

// ValidJSONText reports whether every string of the JSON document body,
// object keys included, is valid text once its escapes are decoded, and
// the document itself is UTF-8: encoding/json would quietly turn invalid
// bytes into U+FFFD. A body that is not JSON passes, for its handler to
// refuse as it does any malformed body.
func ValidJSONText(body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		if s, ok := tok.(string); ok && !ValidText(s) {
			return false
		}
	}
}
