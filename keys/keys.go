package keys

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/storage"
)

// Use is what a key signs. Each use has its own keys and schedule.
type Use string

// Uses of a signing key.
const (
	UseIDToken     Use = "id_token"
	UseAccessToken Use = "access_token"
)

var uses = [...]Use{UseIDToken, UseAccessToken}

// ErrNoSigningKey is returned by Sign when no key of the asked use and
// algorithm is signing at the moment.
var ErrNoSigningKey = errors.New("keys: no signing key")

// Config configures a Manager. Zero durations and algorithms take the
// defaults given; RetireAfter and KEKs have none and must be set.
type Config struct {
	IDTokenAlgorithm     string        // default "RS256"; RS256, ES256, EdDSA
	AccessTokenAlgorithm string        // default "ES256"
	RotationPeriod       time.Duration // default 24h
	PrePublish           time.Duration // default 1h; must exceed JWKSMaxAge + RefreshInterval
	JWKSMaxAge           time.Duration // Cache-Control max-age the broker sends for the JWKS; default 15m
	RetireAfter          time.Duration // how long a key stays published after it stops signing: longest token TTL + skew (broker sets it)
	RefreshInterval      time.Duration // how often a replica re-reads storage; default 30s — bounds how fast replicas converge
	// KEKs decrypt private keys; KEKs[0] encrypts. More than one during a
	// root-secret rotation. Each 32 bytes.
	KEKs [][]byte
	// ExtraIDTokenAlgorithms are algorithms besides IDTokenAlgorithm that
	// keep an ID-token key of their own, for clients whose registered
	// id_token_signed_response_alg differs. Sign uses them only when asked
	// for by name.
	ExtraIDTokenAlgorithms []string
	Clock                  func() time.Time // default time.Now
	Logger                 *slog.Logger     // default slog.Default()
}

func (c Config) withDefaults() (Config, error) {
	if c.IDTokenAlgorithm == "" {
		c.IDTokenAlgorithm = RS256
	}
	if c.AccessTokenAlgorithm == "" {
		c.AccessTokenAlgorithm = ES256
	}
	if c.RotationPeriod == 0 {
		c.RotationPeriod = 24 * time.Hour
	}
	if c.PrePublish == 0 {
		c.PrePublish = time.Hour
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = 15 * time.Minute
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for _, alg := range append([]string{c.IDTokenAlgorithm, c.AccessTokenAlgorithm}, c.ExtraIDTokenAlgorithms...) {
		if !supportedAlg(alg) {
			return c, fmt.Errorf("keys: unsupported algorithm %q (want RS256, ES256 or EdDSA)", alg)
		}
	}
	switch {
	case c.RotationPeriod < 0 || c.PrePublish < 0 || c.JWKSMaxAge < 0 || c.RefreshInterval < 0 || c.RetireAfter < 0:
		return c, errors.New("keys: negative duration in configuration")
	case c.RetireAfter == 0:
		return c, errors.New("keys: RetireAfter must be set to the longest token lifetime plus clock skew")
	case c.PrePublish <= c.JWKSMaxAge+c.RefreshInterval:
		// A replica may learn of a new key RefreshInterval after it was
		// made, and a verifier may then hold the old JWKS for JWKSMaxAge.
		return c, fmt.Errorf("keys: prePublish %v must exceed the JWKS max-age %v plus the refresh interval %v, or verifiers meet keys they have not fetched", c.PrePublish, c.JWKSMaxAge, c.RefreshInterval)
	case c.RotationPeriod <= c.PrePublish+c.RefreshInterval:
		return c, fmt.Errorf("keys: rotationPeriod %v must exceed prePublish %v plus the refresh interval %v", c.RotationPeriod, c.PrePublish, c.RefreshInterval)
	}
	return c, nil
}

// algorithm is the configured algorithm of use.
func (c *Config) algorithm(use Use) string {
	if use == UseIDToken {
		return c.IDTokenAlgorithm
	}
	return c.AccessTokenAlgorithm
}

// isExtra reports whether alg is kept for use only because a client may
// ask for it, not as the use's default.
func (c *Config) isExtra(use Use, alg string) bool {
	return use == UseIDToken && alg != c.IDTokenAlgorithm && slices.Contains(c.ExtraIDTokenAlgorithms, alg)
}

// Manager holds the broker's signing keys in memory and keeps them in step
// with storage. Sign, Verify, JWKS and Algorithms read an immutable snapshot
// through an atomic pointer and never touch storage, so signing does not
// contend; Run, Rotate and Revoke write through storage and swap in a new
// snapshot.
type Manager struct {
	store storage.SigningKeys
	cfg   Config
	keks  []kek

	snap atomic.Pointer[snapshot]

	// updating serialises writes through storage, so that a slow update
	// cannot load an older key set over a newer one.
	updating sync.Mutex

	// created counts the keys this replica generated and stored.
	created atomic.Uint64

	// mu guards the fields below and serialises snapshot rebuilds.
	mu   sync.Mutex
	keys map[string]*key // every stored key, decrypted, by kid
}

// KeysCreated is how many signing keys this replica has created and
// stored: first keys, scheduled rotations and replacements of revoked
// keys. Of several replicas racing to rotate, only the one that stored
// the key counts it.
func (m *Manager) KeysCreated() uint64 { return m.created.Load() }

// material is the decrypted, immutable part of a key; it is shared by every
// snapshot the key appears in.
type material struct {
	sealed []byte // the ciphertext it was opened from, to notice re-encryption
	priv   crypto.Signer
	pub    jose.JSONWebKey // public part, with kid, alg and use
	alg    jose.SignatureAlgorithm

	// signers caches one go-jose signer per JOSE typ header; building a
	// signer per token would allocate and, for RSA, re-check the key.
	signers sync.Map // string → jose.Signer
}

// key is a stored key: its schedule and its material.
type key struct {
	row storage.SigningKey // PrivateKey left nil
	*material
}

func (k *key) publishedAt(now time.Time) bool {
	return !now.Before(k.row.PublishAt) && now.Before(k.row.RemoveAt)
}

func (k *key) signingAt(now time.Time) bool {
	return k.publishedAt(now) && !now.Before(k.row.SignFrom) && now.Before(k.row.SignUntil)
}

func (k *key) signer(typ string) (jose.Signer, error) {
	if s, ok := k.signers.Load(typ); ok {
		return s.(jose.Signer), nil
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: k.alg,
		Key:       jose.JSONWebKey{Key: k.priv, KeyID: k.row.ID, Algorithm: string(k.alg)},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %q: %w", k.row.ID, err)
	}
	// Racing callers may both build one; either is fine to keep.
	actual, _ := k.signers.LoadOrStore(typ, s)
	return actual.(jose.Signer), nil
}

// signSlot names a signing key in a snapshot; alg "" is the use's default.
type signSlot struct {
	use Use
	alg string
}

// snapshot is what the keys look like over [at, next): who is published and
// who signs. It is never modified once stored.
type snapshot struct {
	at, next   time.Time
	published  map[string]*key // by kid
	signing    map[signSlot]*key
	algs       map[Use][]string
	verifyAlgs []jose.SignatureAlgorithm
	jwks       []byte
	etag       string
}

func (s *snapshot) validAt(now time.Time) bool {
	return !now.Before(s.at) && now.Before(s.next)
}

// New returns a Manager for the keys in store. With no keys stored it makes
// the first ones, signing at once: at first start there is no cached JWKS
// to pre-publish against. If stored keys cannot be opened (missing or wrong
// KEK, tampered rows) New fails naming the key and the problem; it never
// makes a new key set over keys it cannot read.
func New(ctx context.Context, store storage.SigningKeys, cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	keks, err := newKEKs(cfg.KEKs)
	if err != nil {
		return nil, err
	}
	m := &Manager{store: store, cfg: cfg, keks: keks, keys: map[string]*key{}}

	rows, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	if len(keks) == 0 {
		if len(rows) > 0 {
			return nil, fmt.Errorf("keys: no key-encryption key configured, but storage holds %d signing keys: set the root secret they were encrypted under", len(rows))
		}
		return nil, errors.New("keys: no key-encryption key configured: set the root secret")
	}
	// Open every stored key before writing anything: a wrong root secret
	// must stop the start, not lead to a second key set.
	if err := m.load(rows); err != nil {
		return nil, err
	}
	if err := m.update(ctx, m.schedule); err != nil {
		return nil, err
	}
	return m, nil
}

// load replaces the in-memory keys with rows and rebuilds the snapshot.
// Keys already known with the same ciphertext are not decrypted again. On
// error nothing changes.
func (m *Manager) load(rows []storage.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]*key, len(rows))
	for _, row := range rows {
		var mat *material
		if old, ok := m.keys[row.ID]; ok && string(old.sealed) == string(row.PrivateKey) &&
			old.row.Algorithm == row.Algorithm && old.row.Use == row.Use {
			mat = old.material
		} else {
			var err error
			if mat, err = decode(m.keks, row); err != nil {
				return err
			}
		}
		row.PrivateKey = nil
		next[row.ID] = &key{row: row, material: mat}
	}
	m.keys = next
	m.snap.Store(m.build(m.cfg.Clock(), m.snap.Load()))
	return nil
}

// current returns the snapshot valid now, rebuilding it from memory when a
// key's date has passed since it was built. This keeps every replica's
// switch on the stored dates to the instant, without a storage call.
func (m *Manager) current() *snapshot {
	now := m.cfg.Clock()
	if s := m.snap.Load(); s.validAt(now) {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.snap.Load()
	if !s.validAt(now) {
		s = m.build(now, s)
		m.snap.Store(s)
	}
	return s
}

// farFuture bounds a snapshot with no date ahead of it.
const farFuture = 100 * 365 * 24 * time.Hour

// build computes the snapshot at now. m.mu must be held. prev, if not nil,
// lends its encoded JWKS when the published set is unchanged.
func (m *Manager) build(now time.Time, prev *snapshot) *snapshot {
	s := &snapshot{
		at:        now,
		next:      now.Add(farFuture),
		published: map[string]*key{},
		signing:   map[signSlot]*key{},
		algs:      map[Use][]string{},
	}
	var pub []*key
	fallback := map[signSlot]*key{}
	for _, k := range m.keys {
		for _, t := range []time.Time{k.row.PublishAt, k.row.SignFrom, k.row.SignUntil, k.row.RemoveAt} {
			if t.After(now) && t.Before(s.next) {
				s.next = t
			}
		}
		if !k.publishedAt(now) {
			continue
		}
		s.published[k.row.ID] = k
		pub = append(pub, k)
		use := Use(k.row.Use)
		if !slices.Contains(s.algs[use], k.row.Algorithm) {
			s.algs[use] = append(s.algs[use], k.row.Algorithm)
		}
		if !slices.Contains(s.verifyAlgs, k.alg) {
			s.verifyAlgs = append(s.verifyAlgs, k.alg)
		}
		if !k.signingAt(now) {
			continue
		}
		// Of several keys signing for a slot (a rotation or revocation
		// whose old key has not reached its SignUntil on some replica),
		// the latest SignFrom wins.
		later(s.signing, signSlot{use, k.row.Algorithm}, k)
		if !m.cfg.isExtra(use, k.row.Algorithm) {
			later(fallback, signSlot{use, ""}, k)
		}
	}
	// A use's default is its configured algorithm's key; while a change of
	// algorithm is pre-publishing, the newest key of another algorithm
	// that is not kept as an extra goes on signing.
	for _, use := range uses {
		if k, ok := s.signing[signSlot{use, m.cfg.algorithm(use)}]; ok {
			s.signing[signSlot{use, ""}] = k
		} else if k, ok := fallback[signSlot{use, ""}]; ok {
			s.signing[signSlot{use, ""}] = k
		}
	}
	for _, a := range s.algs {
		sort.Strings(a)
	}

	// Order by publication, then kid: every replica encodes the same set
	// to the same bytes, so ETags agree across replicas.
	sort.Slice(pub, func(i, j int) bool {
		a, b := pub[i].row, pub[j].row
		if !a.PublishAt.Equal(b.PublishAt) {
			return a.PublishAt.Before(b.PublishAt)
		}
		return a.ID < b.ID
	})
	if prev != nil && sameKeys(prev.published, s.published) {
		s.jwks, s.etag = prev.jwks, prev.etag
		return s
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(pub))}
	for _, k := range pub {
		jwk := k.pub
		jwk.Use = "sig"
		set.Keys = append(set.Keys, jwk)
	}
	body, err := json.Marshal(set)
	if err != nil {
		// Every key was encoded once already, when it was made.
		panic(fmt.Sprintf("keys: encode JWKS: %v", err))
	}
	sum := sha256.Sum256(body)
	s.jwks = body
	s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	return s
}

// later puts k in slot unless the key there started signing after it.
func later(slots map[signSlot]*key, slot signSlot, k *key) {
	if cur, ok := slots[slot]; !ok || k.row.SignFrom.After(cur.row.SignFrom) ||
		(k.row.SignFrom.Equal(cur.row.SignFrom) && k.row.ID > cur.row.ID) {
		slots[slot] = k
	}
}

func sameKeys(a, b map[string]*key) bool {
	if len(a) != len(b) {
		return false
	}
	for kid, ka := range a {
		if kb, ok := b[kid]; !ok || ka.material != kb.material {
			return false
		}
	}
	return true
}

// Sign signs payload as a compact JWS with the key now signing for use and
// alg; alg "" means the configured algorithm for use (or, while an
// algorithm change is pre-publishing, the one still signing). typ, if not
// empty, goes in the JOSE header ("JWT", "at+jwt", "logout+jwt"); kid is
// always set. Sign reads memory only. It does not look at the payload: the
// caller builds the claims. A payload that depends on the algorithm (an ID
// token's at_hash or c_hash) needs Signer instead, so that the algorithm
// cannot change between hashing and signing.
func (m *Manager) Sign(use Use, alg string, typ string, payload []byte) (string, error) {
	s, err := m.Signer(use, alg)
	if err != nil {
		return "", err
	}
	return s.Sign(typ, payload)
}

// Signer returns the key now signing for use and alg (alg "" as for Sign),
// held for one token: the caller reads its algorithm, builds the payload
// and signs with it. A Signer taken just before a rotation still signs
// with the old key, which stays published for RetireAfter; hold it for the
// building of one token, no longer.
func (m *Manager) Signer(use Use, alg string) (Signer, error) {
	k, ok := m.current().signing[signSlot{use, alg}]
	if !ok {
		if alg == "" {
			alg = "its default algorithm"
		}
		return Signer{}, fmt.Errorf("%w for %s with %s", ErrNoSigningKey, use, alg)
	}
	return Signer{k}, nil
}

// Signer is one signing key, as returned by Manager.Signer.
type Signer struct{ k *key }

// Algorithm is the JWS algorithm the key signs with.
func (s Signer) Algorithm() string { return s.k.row.Algorithm }

// KeyID is the key's kid.
func (s Signer) KeyID() string { return s.k.row.ID }

// Sign signs payload as a compact JWS with typ (if not empty) and kid in
// its header.
func (s Signer) Sign(typ string, payload []byte) (string, error) {
	if s.k == nil {
		return "", ErrNoSigningKey
	}
	signer, err := s.k.signer(typ)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign with %q: %w", s.k.row.ID, err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keys: sign with %q: %w", s.k.row.ID, err)
	}
	return token, nil
}

// Verify checks that token is a compact JWS signed by one of the keys the
// JWKS publishes now, with that key's algorithm, and returns its payload
// and protected header. It reads memory only. It checks no claims (exp,
// iss, aud) and no typ: the caller must.
func (m *Manager) Verify(token string) (payload []byte, header jose.Header, err error) {
	s := m.current()
	if len(s.verifyAlgs) == 0 {
		return nil, jose.Header{}, errors.New("keys: verify: no published keys")
	}
	obj, err := jose.ParseSignedCompact(token, s.verifyAlgs)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("keys: verify: %w", err)
	}
	if len(obj.Signatures) != 1 {
		return nil, jose.Header{}, fmt.Errorf("keys: verify: %d signatures, want 1", len(obj.Signatures))
	}
	h := obj.Signatures[0].Protected
	k, ok := s.published[h.KeyID]
	if !ok {
		return nil, jose.Header{}, fmt.Errorf("keys: verify: kid %q is not a published key", h.KeyID)
	}
	if h.Algorithm != string(k.alg) {
		return nil, jose.Header{}, fmt.Errorf("keys: verify: alg %q, but key %q is %s", h.Algorithm, h.KeyID, k.alg)
	}
	payload, err = obj.Verify(k.pub.Key)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("keys: verify with %q: %w", h.KeyID, err)
	}
	return payload, h, nil
}

// JWKS returns the public key set now published, encoded, and its strong
// ETag. The encoding is redone only when the set changes; callers must not
// modify body.
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.current()
	return s.jwks, s.etag
}

// Algorithms returns, sorted, every algorithm the JWKS now publishes a key
// of for use: what discovery lists and what verifiers must accept.
func (m *Manager) Algorithms(use Use) []string {
	return slices.Clone(m.current().algs[use])
}
