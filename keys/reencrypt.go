package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/idbroker/broker/storage"
)

// ReencryptAll re-encrypts every stored private key under newKEK, in one
// exclusive update: all keys or none. Keys are opened with newKEK or any of
// oldKEKs, so running it twice is harmless; it returns how many keys it
// re-encrypted (those not already under newKEK). It is the storage half of
// rotating the root secret: replicas must already accept both secrets
// (Config.KEKs with the new one first) before it runs, and may drop the old
// one after.
func ReencryptAll(ctx context.Context, store storage.SigningKeys, oldKEKs [][]byte, newKEK []byte) (int, error) {
	if len(newKEK) == 0 {
		return 0, errors.New("keys: re-encrypt: no new key-encryption key")
	}
	keks, err := newKEKs(append([][]byte{newKEK}, oldKEKs...))
	if err != nil {
		return 0, err
	}
	var n int
	var failed error // the callback's own error, already worded
	_, err = store.UpdateSigningKeys(ctx, func(rows []storage.SigningKey) ([]storage.SigningKey, error) {
		n = 0
		rows = slices.Clone(rows)
		for i, r := range rows {
			// decode checks the whole row, not only that it decrypts, so
			// a tampered key is not laundered under the new KEK.
			if _, err := decode(keks, r); err != nil {
				failed = err
				return nil, err
			}
			der, which, err := open(keks, r.PrivateKey, signingKeyLabel, r.ID, r.Algorithm, r.Use)
			if err != nil {
				failed = keyError(r, err)
				return nil, failed
			}
			if which == 0 {
				continue
			}
			sealed, err := seal(keks[0], der, signingKeyLabel, r.ID, r.Algorithm, r.Use)
			if err != nil {
				failed = err
				return nil, err
			}
			rows[i].PrivateKey = sealed
			n++
		}
		return rows, nil
	})
	if failed != nil {
		return 0, failed
	}
	if err != nil {
		return 0, fmt.Errorf("keys: re-encrypt: %w", err)
	}
	return n, nil
}
