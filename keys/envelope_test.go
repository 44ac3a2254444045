package keys_test

import (
	"errors"
	"testing"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/keys"
)

const tokenLabel = "idbroker upstream refresh token"

func newEnvelope(t *testing.T, label string, keks ...[]byte) *keys.Envelope {
	t.Helper()
	e, err := keys.NewEnvelope(label, keks)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// During a rotation of the root secret the new key seals and both open;
// once the old key is dropped, what only it sealed no longer opens.
func TestEnvelope_FirstKeySealsEveryKeyOpens(t *testing.T) {
	old, next := newKEK(t), newKEK(t)
	before := newEnvelope(t, tokenLabel, old)
	during := newEnvelope(t, tokenLabel, next, old)
	after := newEnvelope(t, tokenLabel, next)

	sealedBefore, err := before.Seal([]byte("refresh-1"))
	if err != nil {
		t.Fatal(err)
	}
	sealedDuring, err := during.Seal([]byte("refresh-2"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		e      *keys.Envelope
		sealed []byte
		want   string
		is     error
	}{
		"old seal, both keys": {during, sealedBefore, "refresh-1", nil},
		"new seal, both keys": {during, sealedDuring, "refresh-2", nil},
		"new seal, new key":   {after, sealedDuring, "refresh-2", nil},
		"old seal, new key":   {after, sealedBefore, "", keys.ErrUnknownKEK},
		"new seal, old key":   {before, sealedDuring, "", keys.ErrUnknownKEK},
	} {
		got, err := tc.e.Open(tc.sealed)
		if string(got) != tc.want || !errors.Is(err, tc.is) {
			t.Errorf("%s: %q, %v; want %q, %v", name, got, err, tc.want, tc.is)
		}
	}
}

// Upstream refresh tokens sealed before the envelope (nonce ‖ ciphertext,
// no additional data) still open, under the current key or an old one.
func TestEnvelope_OpensWhatTheBrokerSealedBeforeIt(t *testing.T) {
	old, next := newKEK(t), newKEK(t)
	bare := func(key []byte, plaintext string) []byte { return testenv.BareSeal(t, key, []byte(plaintext)) }
	e := newEnvelope(t, tokenLabel, next, old)
	for _, key := range [][]byte{next, old} {
		if got, err := e.Open(bare(key, "stored-refresh")); err != nil || string(got) != "stored-refresh" {
			t.Errorf("bare ciphertext: %q, %v", got, err)
		}
	}
	if got, err := newEnvelope(t, tokenLabel, next).Open(bare(old, "stored-refresh")); err == nil {
		t.Errorf("bare ciphertext under a dropped key opened: %q", got)
	}
}

func TestEnvelope_RefusesTamperingAndAnotherLabel(t *testing.T) {
	kek := newKEK(t)
	e := newEnvelope(t, tokenLabel, kek)
	sealed, err := e.Seal([]byte("refresh"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	if got, err := e.Open(flipped); !errors.Is(err, keys.ErrTampered) {
		t.Errorf("flipped bit: %q, %v; want ErrTampered", got, err)
	}
	if got, err := newEnvelope(t, "something else", kek).Open(sealed); !errors.Is(err, keys.ErrTampered) {
		t.Errorf("another label: %q, %v; want ErrTampered", got, err)
	}
	if _, err := keys.NewEnvelope(tokenLabel, [][]byte{kek[:16]}); err == nil {
		t.Error("a 16-byte key was accepted")
	}
	if _, err := keys.NewEnvelope(tokenLabel, nil); err == nil {
		t.Error("an envelope without keys was accepted")
	}
}

// Reseal leaves what the first key sealed as it is, and seals again under
// the first key what another key (or the bare format) sealed; what no key
// opens is an error.
func TestEnvelope_Reseal(t *testing.T) {
	old, next := newKEK(t), newKEK(t)
	before := newEnvelope(t, tokenLabel, old)
	during := newEnvelope(t, tokenLabel, next, old)
	after := newEnvelope(t, tokenLabel, next)
	sealedOld, err := before.Seal([]byte("refresh-old"))
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, err := during.Seal([]byte("refresh-new"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		sealed []byte
		want   string
	}{
		"old key":        {sealedOld, "refresh-old"},
		"bare (old key)": {testenv.BareSeal(t, old, []byte("refresh-bare")), "refresh-bare"},
		"bare (new key)": {testenv.BareSeal(t, next, []byte("refresh-bare")), "refresh-bare"},
	} {
		resealed, changed, err := during.Reseal(tc.sealed)
		if err != nil || !changed {
			t.Fatalf("%s: changed %v, %v", name, changed, err)
		}
		if got, err := after.Open(resealed); err != nil || string(got) != tc.want {
			t.Errorf("%s: re-sealed opens under the new key alone as %q, %v", name, got, err)
		}
		if again, changed, err := during.Reseal(resealed); err != nil || changed || string(again) != string(resealed) {
			t.Errorf("%s: a second reseal changed %v, %v", name, changed, err)
		}
	}
	if got, changed, err := during.Reseal(sealedNew); err != nil || changed || string(got) != string(sealedNew) {
		t.Errorf("sealed under the first key: changed %v, %v", changed, err)
	}
	if _, _, err := after.Reseal(sealedOld); !errors.Is(err, keys.ErrUnknownKEK) {
		t.Errorf("sealed under a dropped key: %v, want ErrUnknownKEK", err)
	}
	if _, _, err := during.Reseal([]byte("garbage")); !errors.Is(err, keys.ErrTampered) {
		t.Errorf("garbage: %v, want ErrTampered", err)
	}
}

// A ciphertext sealed for one row opens for that row alone. One sealed
// before its kind was bound to rows (with no fields) still opens for any,
// and Reseal binds it to the row it is in, after which it opens there
// alone.
func TestEnvelope_BoundToItsRow(t *testing.T) {
	e := newEnvelope(t, "idbroker stored connector settings", newKEK(t))
	sealed, err := e.Seal([]byte("acme settings"), "acme-sso", "auth0")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Open(sealed, "acme-sso", "auth0"); err != nil || string(got) != "acme settings" {
		t.Fatalf("its own row: %q, %v", got, err)
	}
	for _, row := range [][]string{{"globex-sso", "auth0"}, {"acme-sso", "oidc"}, {"acme-sso"}, nil} {
		if _, err := e.Open(sealed, row...); !errors.Is(err, keys.ErrTampered) {
			t.Errorf("opened for row %q: %v, want ErrTampered", row, err)
		}
	}

	unbound, err := e.Seal([]byte("legacy settings"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.Open(unbound, "globex-sso", "auth0"); err != nil || string(got) != "legacy settings" {
		t.Fatalf("unbound: %q, %v", got, err)
	}
	bound, changed, err := e.Reseal(unbound, "globex-sso", "auth0")
	if err != nil || !changed {
		t.Fatalf("reseal of unbound: changed %v, %v", changed, err)
	}
	if _, err := e.Open(bound, "acme-sso", "auth0"); !errors.Is(err, keys.ErrTampered) {
		t.Errorf("re-sealed for globex-sso, opened for acme-sso: %v", err)
	}
	if again, changed, err := e.Reseal(bound, "globex-sso", "auth0"); err != nil || changed || string(again) != string(bound) {
		t.Errorf("a second reseal: changed %v, %v", changed, err)
	}
}
