package broker_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// Upstream refresh tokens that earlier releases sealed (nonce ‖ AES-GCM
// ciphertext, no header, under the key derived for "broker upstream token
// seal v1") still open and re-check the user upstream, under the current
// root secret or one being rotated out; a token that does not open fails
// the refresh, the control that shows the re-check reads the stored token.
func TestRefresh_UpstreamTokenSealedByAnEarlierReleaseStillRechecks(t *testing.T) {
	current, previous := rootSecret(t), rootSecret(t)
	for _, tc := range []struct {
		name   string
		seal   func(plaintext []byte) []byte
		status int
	}{
		{"under the current secret", func(p []byte) []byte { return testenv.BareSeal(t, current.upstreamKey(t), p) }, http.StatusOK},
		{"under the previous secret", func(p []byte) []byte { return testenv.BareSeal(t, previous.upstreamKey(t), p) }, http.StatusOK},
		{"under neither", func(p []byte) []byte { return testenv.BareSeal(t, rootSecret(t).upstreamKey(t), p) }, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
				o.Secret, o.PreviousSecrets = current.secret, []broker.RootSecret{previous.secret}
				for i := range c.Connectors {
					c.Connectors[i].RecheckInterval = time.Minute
				}
			})
			u.auth0.SetNextUser(testenv.User{Sub: "auth0|sealed", Email: "sealed@corp.example.com", EmailVerified: true})
			tr, _ := u.mustLoginVia("sealed@corp.example.com")

			ctx := context.Background()
			hash := sha256.Sum256([]byte("refresh token:" + tr.RefreshToken))
			fam, err := u.store.GetRefreshFamilyByToken(ctx, hash[:])
			if err != nil {
				t.Fatal(err)
			}
			envelope, err := keys.NewEnvelope("idbroker upstream refresh token", [][]byte{current.upstreamKey(t)})
			if err != nil {
				t.Fatal(err)
			}
			upstreamToken, err := envelope.Open(fam.UpstreamRefreshToken)
			if err != nil || len(upstreamToken) == 0 {
				t.Fatalf("the broker's own seal: %q, %v", upstreamToken, err)
			}
			if err := u.store.UpdateRefreshFamilyUpstream(ctx, fam.ID, tc.seal(upstreamToken), fam.UpstreamCheckedAt); err != nil {
				t.Fatal(err)
			}

			u.clock.Advance(2 * time.Minute) // past the recheck interval
			if r := u.refresh("dev", tr.RefreshToken); r.Status != tc.status {
				t.Errorf("refresh: %d %s %s, want %d", r.Status, r.Error, r.Description, tc.status)
			}
		})
	}
}

type testSecret struct {
	raw    []byte
	secret broker.RootSecret
}

func rootSecret(t *testing.T) testSecret {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	s, err := broker.ParseRootSecret(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	return testSecret{raw: raw, secret: s}
}

// upstreamKey is the key earlier releases sealed upstream tokens under.
func (s testSecret) upstreamKey(t *testing.T) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, s.raw, nil, "broker upstream token seal v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// secrets rotate re-seals the upstream refresh tokens of sessions and
// families under the new root secret (ResealUpstreamTokens), so once the
// previous secret is gone a re-check still reads them, and a session and
// its family still share their sealed bytes. Without the re-seal the
// re-check fails and signs the user out: the control.
func TestRefresh_UpstreamTokenResealedByASecretRotationRechecksWithoutThePreviousSecret(t *testing.T) {
	current, previous := rootSecret(t), rootSecret(t)
	for _, resealed := range []bool{true, false} {
		t.Run(fmt.Sprintf("resealed %v", resealed), func(t *testing.T) {
			u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
				o.Secret, o.PreviousSecrets = current.secret, nil // the previous secret is already removed
				for i := range c.Connectors {
					c.Connectors[i].RecheckInterval = time.Minute
				}
			})
			u.auth0.SetNextUser(testenv.User{Sub: "auth0|resealed", Email: "resealed@corp.example.com", EmailVerified: true})
			tr, _ := u.mustLoginVia("resealed@corp.example.com")

			ctx := context.Background()
			hash := sha256.Sum256([]byte("refresh token:" + tr.RefreshToken))
			fam, err := u.store.GetRefreshFamilyByToken(ctx, hash[:])
			if err != nil {
				t.Fatal(err)
			}
			if fam.SessionID == "" {
				t.Fatal("the login made no session")
			}
			now, err := broker.UpstreamTokenEnvelope(current.secret, nil)
			if err != nil {
				t.Fatal(err)
			}
			before, err := broker.UpstreamTokenEnvelope(previous.secret, nil)
			if err != nil {
				t.Fatal(err)
			}
			upstreamToken, err := now.Open(fam.UpstreamRefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			// As if the session and its family were sealed before the rotation.
			sealedBefore, err := before.Seal(upstreamToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := u.store.UpdateSessionUpstream(ctx, fam.SessionID, fam.UpstreamRefreshToken, sealedBefore); err != nil {
				t.Fatal(err)
			}

			if resealed {
				counts, err := broker.ResealUpstreamTokens(ctx, u.store, current.secret, []broker.RootSecret{previous.secret})
				if err != nil {
					t.Fatal(err)
				}
				if counts != (storage.ResealCounts{Resealed: 2}) {
					t.Errorf("counts %+v, want the session and its family re-sealed", counts)
				}
				fam, _ := u.store.GetRefreshFamilyByToken(ctx, hash[:])
				sess, err := u.store.GetSession(ctx, fam.SessionID, u.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fam.UpstreamRefreshToken, sess.UpstreamRefreshToken) || bytes.Equal(fam.UpstreamRefreshToken, sealedBefore) {
					t.Error("the session and its family no longer share one new sealed token")
				}
				counts, err = broker.ResealUpstreamTokens(ctx, u.store, current.secret, []broker.RootSecret{previous.secret})
				if err != nil || counts != (storage.ResealCounts{Current: 2}) {
					t.Errorf("a second run: %+v, %v; want both current", counts, err)
				}
			}

			want := http.StatusBadRequest
			if resealed {
				want = http.StatusOK
			}
			u.clock.Advance(2 * time.Minute) // past the recheck interval
			if r := u.refresh("dev", tr.RefreshToken); r.Status != want {
				t.Errorf("refresh: %d %s %s, want %d", r.Status, r.Error, r.Description, want)
			}
		})
	}
}
