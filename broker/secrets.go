package broker

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// RootSecret is the deployment's one secret; every key the broker needs
// beyond its signing keys is derived from it with HKDF, so every replica
// given the same root secret derives the same keys.
type RootSecret struct {
	b         []byte
	Ephemeral bool // made up at start: nothing it protects survives a restart
}

// rootSecretLen is the length of a root secret in bytes.
const rootSecretLen = 32

// ParseRootSecret decodes a base64 (standard or URL, padded or not) root
// secret of 32 bytes.
func ParseRootSecret(s string) (RootSecret, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != rootSecretLen {
				return RootSecret{}, fmt.Errorf("secrets: root secret is %d bytes, want %d (make one with: openssl rand -base64 32)", len(b), rootSecretLen)
			}
			return RootSecret{b: b}, nil
		}
	}
	return RootSecret{}, errors.New("secrets: root secret is not base64 (make one with: openssl rand -base64 32)")
}

// NewEphemeralRootSecret makes a random root secret for a development
// instance.
func NewEphemeralRootSecret() RootSecret {
	b := make([]byte, rootSecretLen)
	rand.Read(b)
	return RootSecret{b: b, Ephemeral: true}
}

// RootSecretFromEnv reads BROKER_SECRET, or the file named by
// BROKER_SECRET_FILE. ok is false when neither is set.
func RootSecretFromEnv(lookup func(string) (string, bool)) (s RootSecret, ok bool, err error) {
	if v, set := lookup("BROKER_SECRET"); set && v != "" {
		s, err = ParseRootSecret(v)
		return s, true, err
	}
	if path, set := lookup("BROKER_SECRET_FILE"); set && path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return RootSecret{}, true, fmt.Errorf("secrets: %w", err)
		}
		s, err = ParseRootSecret(string(data))
		return s, true, err
	}
	return RootSecret{}, false, nil
}

// Purposes of derived keys. Changing one changes every key derived for it.
const (
	purposeKEK          = "broker key-encryption key v1"
	purposeOTP          = "broker one-time code hash v1"
	purposeCSRF         = "broker csrf v1"
	purposeRefresh      = "broker refresh successor v1"
	purposeLibraryCrypt = "broker zitadel crypto v1"
	purposeUpstreamSeal = "broker upstream token seal v1"
	// purposeConnectorSeal keys the envelope of stored connectors'
	// settings, which hold their client secrets and API keys.
	purposeConnectorSeal = "broker connector settings seal v1"
)

// upstreamTokenLabel is what the envelope of upstream refresh tokens binds
// each ciphertext to (keys.Envelope).
const upstreamTokenLabel = "idbroker upstream refresh token"

// connectorSettingsLabel is what the envelope of stored connectors'
// settings binds each ciphertext to: settings cannot be passed off as an
// upstream token, nor the reverse.
const connectorSettingsLabel = "idbroker stored connector settings"

// connectorRow is what a stored connector's sealed settings are bound to
// besides their label: its id and type, so that whoever can write the
// database but holds no root secret cannot give one connector another's
// upstream, client and secret by copying the sealed bytes across rows.
func connectorRow(c storage.StoredConnector) []string { return []string{c.ID, c.Type} }

// derive returns the 32-byte key for purpose.
func (s RootSecret) derive(purpose string) keys.KeyedHash {
	k, err := hkdf.Key(sha256.New, s.b, nil, purpose, 32)
	if err != nil {
		// Only reachable with an invalid length, which is a constant here.
		panic(fmt.Sprintf("secrets: hkdf: %v", err))
	}
	return k
}

// KEK is the key-encryption key for signing keys at rest.
func (s RootSecret) KEK() []byte { return s.derive(purposeKEK) }

// UpstreamTokenEnvelope is the envelope the broker seals upstream refresh
// tokens in, given its root secret and the previous ones: it seals under
// secret and opens under any of them (secrets rotate re-seals with it).
func UpstreamTokenEnvelope(secret RootSecret, previous []RootSecret) (*keys.Envelope, error) {
	return keys.NewEnvelope(upstreamTokenLabel, derived(Options{Secret: secret, PreviousSecrets: previous}, purposeUpstreamSeal))
}

// ConnectorSettingsEnvelope is the envelope the broker seals stored
// connectors' settings in (storage.StoredConnector.Settings), given its
// root secret and the previous ones: it seals under secret and opens
// under any of them.
func ConnectorSettingsEnvelope(secret RootSecret, previous []RootSecret) (*keys.Envelope, error) {
	return keys.NewEnvelope(connectorSettingsLabel, derived(Options{Secret: secret, PreviousSecrets: previous}, purposeConnectorSeal))
}

// ResealConnectorSettings re-seals every stored connector's settings
// under secret and bound to its row (connectorRow), opening them under
// secret or any of previous (secrets rotate), bound or as sealed before
// the binding, each with an atomic update that re-seals what the row holds
// then, so a concurrent change is never overwritten. It returns how many
// it re-sealed; settings that open under none of the secrets are left
// as they are, and the first such error is returned after the others are
// done.
func ResealConnectorSettings(ctx context.Context, store storage.Organizations, secret RootSecret, previous []RootSecret) (int, error) {
	env, err := ConnectorSettingsEnvelope(secret, previous)
	if err != nil {
		return 0, err
	}
	list, err := store.ListConnectors(ctx)
	if err != nil {
		return 0, fmt.Errorf("secrets: list connectors: %w", err)
	}
	var n int
	var unreadable error
	for _, c := range list {
		// A row already sealed under secret is not written: a write
		// makes every replica reload its connectors.
		if _, changed, err := env.Reseal(c.Settings, connectorRow(c)...); err == nil && !changed {
			continue
		}
		changed := false
		_, err := store.UpdateConnector(ctx, c.ID, func(c storage.StoredConnector) (storage.StoredConnector, error) {
			next, ch, err := env.Reseal(c.Settings, connectorRow(c)...)
			if err != nil {
				return c, fmt.Errorf("%w: connector %q: %w", storage.ErrUnreadable, c.ID, err)
			}
			if changed = ch; ch {
				c.Settings = next
			}
			return c, nil
		})
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// Deleted meanwhile: nothing left to protect.
		case errors.Is(err, storage.ErrUnreadable):
			unreadable = cmp.Or(unreadable, err)
		case err != nil:
			return n, fmt.Errorf("secrets: connector %q: %w", c.ID, err)
		case changed:
			n++
		}
	}
	return n, unreadable
}

// ResealUpstreamTokens re-seals every upstream refresh token kept with a
// refresh family or a session under secret, opening it under secret or
// any of previous (secrets rotate): once the previous secrets are gone,
// re-checks still read them. Each row is replaced with a compare-and-swap
// (storage.Sessions.ResealUpstreamTokens), so a broker re-checking
// meanwhile is never overwritten, and a second run changes nothing. What
// opens under none of the secrets is left as it is and counted. The same
// sealed bytes become the same new bytes within a run, so a session and
// the families that share its token still share it after (a re-check
// that rotates a family's token finds the session's copy by those bytes).
func ResealUpstreamTokens(ctx context.Context, store storage.Storage, secret RootSecret, previous []RootSecret) (storage.ResealCounts, error) {
	env, err := UpstreamTokenEnvelope(secret, previous)
	if err != nil {
		return storage.ResealCounts{}, err
	}
	type result struct {
		next    []byte
		changed bool
		err     error
	}
	done := map[string]result{}
	return store.ResealUpstreamTokens(ctx, func(old []byte) ([]byte, bool, error) {
		if r, ok := done[string(old)]; ok {
			return r.next, r.changed, r.err
		}
		next, changed, err := env.Reseal(old)
		if err != nil {
			err = fmt.Errorf("%w: %w", storage.ErrUnreadable, err)
		}
		done[string(old)] = result{next, changed, err}
		return next, changed, err
	})
}

// PreviousRootSecretsFromEnv reads BROKER_PREVIOUS_SECRET: a root secret
// being rotated out (several may be given, separated by commas).
func PreviousRootSecretsFromEnv(lookup func(string) (string, bool)) ([]RootSecret, error) {
	v, _ := lookup("BROKER_PREVIOUS_SECRET")
	var out []RootSecret
	for _, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		s, err := ParseRootSecret(part)
		if err != nil {
			return nil, fmt.Errorf("BROKER_PREVIOUS_SECRET: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}
