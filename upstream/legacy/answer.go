package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"

	"github.com/idbroker/broker/upstream"
)

// identity maps a 200 answer of the validation endpoint to an identity.
// Every mapped field must have its JSON type (a string, or a boolean for
// EmailVerified) or be absent or null; anything else means the answer is
// not what the configuration describes, and nothing is guessed from it.
func (c *Connector) identity(data []byte) (upstream.Identity, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers in Claims stay exact
	var answer map[string]any
	if err := dec.Decode(&answer); err != nil {
		return upstream.Identity{}, fmt.Errorf("answer is not JSON: %w", err)
	}
	if answer == nil {
		return upstream.Identity{}, errors.New("answer is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return upstream.Identity{}, errors.New("answer has data after its JSON object")
	}
	f := c.cfg.Fields
	rawID, err := stringField(answer, f.UserID)
	if err != nil {
		return upstream.Identity{}, err
	}
	if rawID == "" {
		return upstream.Identity{}, fmt.Errorf("answer has no %q", f.UserID)
	}
	userID, err := parseUUID(rawID)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("%q %q is not a UUID: %w", f.UserID, truncate(rawID), err)
	}
	email, err := stringField(answer, f.Email)
	if err != nil {
		return upstream.Identity{}, err
	}
	// An address that does not normalise is no address, and not verified.
	email, _ = upstream.NormalizeEmail(email)
	name, err := stringField(answer, f.Name)
	if err != nil {
		return upstream.Identity{}, err
	}
	verified := false
	if f.EmailVerified != "" {
		if verified, err = boolField(answer, f.EmailVerified); err != nil {
			return upstream.Identity{}, err
		}
	}
	return upstream.Identity{
		ConnectorID:   c.cfg.ID,
		Subject:       userID,
		UserID:        userID,
		Email:         email,
		EmailVerified: email != "" && verified,
		Name:          strings.TrimSpace(name),
		Claims:        answer,
	}, nil
}

// parseUUID accepts only the hyphenated 36-character form (any case) and
// returns it lower-cased. uuid.Parse alone would also take braces, a
// urn:uuid: prefix and bare hex, forms no platform id store uses; the nil
// UUID is a placeholder, never a user.
func parseUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("length %d, want 36", len(s))
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", err
	}
	if u == uuid.Nil {
		return "", errors.New("the nil UUID")
	}
	return u.String(), nil
}

// stringField is the string at path, "" when absent or null.
func stringField(answer map[string]any, path string) (string, error) {
	v, _ := upstream.Lookup(answer, path)
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("field %q is %s, not a string", path, jsonType(v))
}

// boolField is the boolean at path, false when absent or null. "true" as
// a string is refused rather than read: a flag that vouches for an email
// must say so unambiguously.
func boolField(answer map[string]any, path string) (bool, error) {
	v, _ := upstream.Lookup(answer, path)
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	}
	return false, fmt.Errorf("field %q is %s, not a boolean", path, jsonType(v))
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// truncate keeps quoted answer values short in logs.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
