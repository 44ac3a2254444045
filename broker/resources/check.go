package resources

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/storage"
)

// MaxIDLength is the longest resource identifier accepted, in bytes: an
// identifier is a token's aud, sent with every request to the resource.
const MaxIDLength = 255

// FieldError says which field of a resource is wrong, named as the
// admin API and the configuration file name it.
type FieldError struct {
	Field  string // id, scopes, access_token_ttl
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Check holds r to the rules every resource follows, wherever it is
// written. maxTTL bounds its access-token lifetime: the broker keeps a
// revocation only as long as its own access tokens live
// (tokens.accessTokenTTL), so a longer-lived token would outlive it.
func Check(r storage.Resource, maxTTL time.Duration) error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range r.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !edge.ValidName(s) {
			return &FieldError{"scopes", fmt.Sprintf("%q is not a scope (RFC 6749 section 3.3)", s)}
		}
		if seen[s] {
			return &FieldError{"scopes", fmt.Sprintf("%q is listed twice", s)}
		}
		seen[s] = true
	}
	if r.AccessTokenTTL < 0 || r.AccessTokenTTL > maxTTL {
		return &FieldError{"access_token_ttl", fmt.Sprintf("%s is not between 0 (the broker's) and the broker's access-token lifetime, %s", r.AccessTokenTTL, maxTTL)}
	}
	if r.AccessTokenTTL > 0 && r.AccessTokenTTL < time.Second {
		return &FieldError{"access_token_ttl", fmt.Sprintf("%s is shorter than a second", r.AccessTokenTTL)}
	}
	return nil
}

// checkID holds a resource identifier to RFC 8707 section 2 ("an
// absolute URI ... MUST NOT include a fragment component") and to https,
// which is what a resource's metadata (RFC 9728) is served over.
func checkID(id string) error {
	if len(id) > MaxIDLength {
		return &FieldError{"id", fmt.Sprintf("is %d bytes long, longer than %d", len(id), MaxIDLength)}
	}
	if !edge.ValidName(id) {
		return &FieldError{"id", "is not UTF-8 text without control characters"}
	}
	u, err := url.Parse(id)
	switch {
	case id == "":
		return &FieldError{"id", "is required"}
	case err != nil || !u.IsAbs() || u.Opaque != "":
		return &FieldError{"id", fmt.Sprintf("%q is not an absolute URL", id)}
	case u.Scheme != "https":
		return &FieldError{"id", fmt.Sprintf("%q is not an https URL", id)}
	case u.Host == "":
		return &FieldError{"id", fmt.Sprintf("%q names no host", id)}
	case u.Fragment != "" || strings.Contains(id, "#"):
		return &FieldError{"id", fmt.Sprintf("%q has a fragment (RFC 8707 section 2)", id)}
	case u.User != nil:
		return &FieldError{"id", fmt.Sprintf("%q holds user information", id)}
	}
	return nil
}
