package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// The envelope: what seal writes and open reads, for signing keys and
// every other secret the broker keeps at rest (Envelope).
//
//	version (1 byte) ‖ KEK id (8 bytes) ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag
//
// The additional data is a label naming what is sealed, the header
// (version and KEK id), and the fields the ciphertext is bound to, each
// after a zero byte; so a ciphertext cannot be moved to another kind of
// secret or another row.

const (
	// KEKSize is the length of a key-encryption key: AES-256.
	KEKSize = 32

	// sealVersion is the first byte of every ciphertext, so the format can
	// change without guessing.
	sealVersion = 1
	// kekIDSize is the length of the KEK fingerprint stored with each
	// ciphertext. It lets New say "wrong root secret" rather than the
	// ambiguous "does not decrypt", and picks the KEK without trial
	// decryption.
	kekIDSize = 8
)

// Envelope seals small secrets other than signing keys (an upstream's
// refresh token) with AES-256-GCM under key-encryption keys, in the
// envelope signing keys are sealed in: the first key seals, every key
// opens, so the root secret they come from can be rotated (new one first,
// old ones after) without losing what was sealed. Every ciphertext is
// bound to the envelope's label, so one kind of secret cannot be passed
// off as another. It is safe for concurrent use.
//
// An Envelope does not re-seal what an older key sealed by itself;
// whoever stores the ciphertext does that with Reseal, if it must outlive
// the old key.
type Envelope struct {
	label string
	keks  []kek
}

// NewEnvelope returns an envelope for the secrets label names, sealing
// under keys[0] and opening under any of keys, each KEKSize bytes.
func NewEnvelope(label string, keys [][]byte) (*Envelope, error) {
	if label == "" || len(keys) == 0 {
		return nil, errors.New("keys: an envelope needs a label and at least one key")
	}
	keks, err := newKEKs(keys)
	if err != nil {
		return nil, err
	}
	return &Envelope{label: label, keks: keks}, nil
}

// Seal encrypts plaintext under the first key, bound to fields as well as
// to the envelope's label: what names the row the ciphertext is kept in
// (a stored connector's id), so that it cannot be moved to another.
func (e *Envelope) Seal(plaintext []byte, fields ...string) ([]byte, error) {
	return seal(e.keks[0], plaintext, e.label, fields...)
}

// Open decrypts what Seal made with the same fields, under whichever key
// sealed it. Errors wrap ErrUnknownKEK (sealed under a key not given: a
// root secret dropped too soon) or ErrTampered (among them, sealed with
// other fields: moved from another row).
//
// Open also opens, whatever fields it is given, what was sealed before
// its kind of secret was bound to its row (with no fields) and the bare
// format the broker sealed upstream refresh tokens in before there was an
// Envelope (nonce ‖ AES-256-GCM ciphertext, no header, no additional
// data, tried under each key), so that what is stored stays readable;
// nothing is sealed in either any more, and Reseal binds them.
func (e *Envelope) Open(ciphertext []byte, fields ...string) ([]byte, error) {
	plaintext, _, err := e.open(ciphertext, fields)
	return plaintext, err
}

// Reseal returns ciphertext sealed under the first key and bound to
// fields: unchanged (and changed false) when it already is, else opened
// as Open opens it and sealed again. An error, wrapping ErrUnknownKEK or
// ErrTampered, says it does not open.
func (e *Envelope) Reseal(ciphertext []byte, fields ...string) (next []byte, changed bool, err error) {
	plaintext, current, err := e.open(ciphertext, fields)
	if err != nil {
		return nil, false, err
	}
	if current {
		return ciphertext, false, nil
	}
	next, err = e.Seal(plaintext, fields...)
	if err != nil {
		return nil, false, err
	}
	return next, true, nil
}

// open is Open, saying also whether ciphertext is current: sealed under
// the first key, bound to fields.
func (e *Envelope) open(ciphertext []byte, fields []string) (plaintext []byte, current bool, err error) {
	plaintext, i, err := open(e.keks, ciphertext, e.label, fields...)
	if err == nil {
		return plaintext, i == 0, nil
	}
	if len(fields) > 0 && errors.Is(err, ErrTampered) {
		if unbound, _, uerr := open(e.keks, ciphertext, e.label); uerr == nil {
			return unbound, false, nil
		}
	}
	if bare, ok := e.openBare(ciphertext); ok {
		return bare, false, nil
	}
	return nil, false, fmt.Errorf("keys: %s does not open: %w", e.label, err)
}

// openBare opens the format of before the Envelope. The GCM tag makes a
// false positive as unlikely as a forgery, so a ciphertext in the current
// format never opens here.
func (e *Envelope) openBare(ciphertext []byte) ([]byte, bool) {
	for _, k := range e.keks {
		n := k.aead.NonceSize()
		if len(ciphertext) < n {
			return nil, false
		}
		if plaintext, err := k.aead.Open(nil, ciphertext[:n], ciphertext[n:], nil); err == nil {
			return plaintext, true
		}
	}
	return nil, false
}

// kek is a key-encryption key with its fingerprint and ready AEAD.
type kek struct {
	id   [kekIDSize]byte
	aead cipher.AEAD
}

func newKEKs(raw [][]byte) ([]kek, error) {
	out := make([]kek, 0, len(raw))
	for i, k := range raw {
		if len(k) != KEKSize {
			return nil, fmt.Errorf("keys: key-encryption key %d is %d bytes, want %d", i, len(k), KEKSize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("keys: key-encryption key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keys: key-encryption key %d: %w", i, err)
		}
		// The fingerprint is a MAC under the KEK of a fixed label: it
		// identifies the KEK and reveals nothing about it.
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte("idbroker keys: key-encryption key id"))
		var kk kek
		copy(kk.id[:], mac.Sum(nil))
		kk.aead = aead
		out = append(out, kk)
	}
	return out, nil
}

// additionalData binds a ciphertext to what it is (label) and to its row
// (fields), so an attacker with write access to storage cannot move one
// key's ciphertext under another kid, relabel an ES256 key as an ID-token
// key, or pass a sealed token off as a signing key.
func additionalData(header []byte, label string, fields ...string) []byte {
	size := len(label) + 1 + len(header)
	for _, f := range fields {
		size += 1 + len(f)
	}
	ad := make([]byte, 0, size)
	ad = append(ad, label...)
	ad = append(ad, 0)
	ad = append(ad, header...)
	for _, f := range fields {
		ad = append(ad, 0)
		ad = append(ad, f...)
	}
	return ad
}

// seal encrypts plaintext under k, bound to label and fields.
func seal(k kek, plaintext []byte, label string, fields ...string) ([]byte, error) {
	header := make([]byte, 0, 1+kekIDSize)
	header = append(header, sealVersion)
	header = append(header, k.id[:]...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	out := make([]byte, 0, len(header)+len(nonce)+len(plaintext)+k.aead.Overhead())
	out = append(out, header...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, additionalData(header, label, fields...)), nil
}

// open decrypts what seal made, with whichever of keks sealed it, and
// says which.
func open(keks []kek, ciphertext []byte, label string, fields ...string) (plaintext []byte, kekIndex int, err error) {
	if len(ciphertext) < 1+kekIDSize || ciphertext[0] != sealVersion {
		return nil, -1, ErrTampered
	}
	header := ciphertext[:1+kekIDSize]
	for i, k := range keks {
		if !bytes.Equal(k.id[:], header[1:]) {
			continue
		}
		rest := ciphertext[len(header):]
		if len(rest) < k.aead.NonceSize() {
			return nil, i, ErrTampered
		}
		nonce, sealed := rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():]
		pt, err := k.aead.Open(nil, nonce, sealed, additionalData(header, label, fields...))
		if err != nil {
			return nil, i, ErrTampered
		}
		return pt, i, nil
	}
	return nil, -1, ErrUnknownKEK
}
