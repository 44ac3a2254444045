package keys

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/idbroker/broker/storage"
)

// A plan turns the stored key set into the one wanted at now. It is run
// twice: once on a plain read, to learn whether anything must change and
// which keys to generate, and then inside UpdateSigningKeys on the rows as
// they are under the store's exclusive lock. Only the second run's result
// is written, so of replicas racing to rotate, the first makes the key and
// the others find nothing left to do.
type plan func(rows []storage.SigningKey, now time.Time, gen keyGen) ([]storage.SigningKey, []note, error)

// note is a log line a plan wants written once its result is stored. A plan
// that changes nothing returns no notes.
type note struct {
	level slog.Level
	msg   string
	attrs []any
}

func noteFor(level slog.Level, msg string, r storage.SigningKey) note {
	return note{level, msg, []any{
		"kid", r.ID, "alg", r.Algorithm, "use", r.Use,
		"publish_at", r.PublishAt, "sign_from", r.SignFrom, "sign_until", r.SignUntil, "remove_at", r.RemoveAt,
	}}
}

// keyGen supplies new keys to a plan.
type keyGen interface {
	newKey(use Use, alg string, now time.Time) (storage.SigningKey, error)
}

// recorder is the keyGen of a plan's trial run: it notes what would be
// generated and hands out placeholders.
type recorder struct{ wants []signSlot }

func (r *recorder) newKey(use Use, alg string, now time.Time) (storage.SigningKey, error) {
	r.wants = append(r.wants, signSlot{use, alg})
	return storage.SigningKey{ID: fmt.Sprintf("planned-%d", len(r.wants)), Algorithm: alg, Use: string(use), CreatedAt: now}, nil
}

// pool hands out keys generated before the store's lock was taken, so that
// a 2048-bit RSA generation does not hold every replica's rotation waiting.
// It generates more if the locked run needs more than the trial run did.
type pool struct {
	kek  kek
	keys map[signSlot][]storage.SigningKey
	made int // keys handed out, so stored if the update succeeds
}

func (p *pool) newKey(use Use, alg string, now time.Time) (storage.SigningKey, error) {
	slot := signSlot{use, alg}
	p.made++
	if ks := p.keys[slot]; len(ks) > 0 {
		p.keys[slot] = ks[1:]
		k := ks[0]
		k.CreatedAt = now
		return k, nil
	}
	return newRow(p.kek, use, alg, now)
}

// update runs op against the store: trial run, key generation, then the
// run under the store's lock. It loads the result into memory.
func (m *Manager) update(ctx context.Context, op plan) error {
	m.updating.Lock()
	defer m.updating.Unlock()
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	rec := &recorder{}
	if _, notes, err := op(slices.Clone(rows), m.cfg.Clock(), rec); err != nil {
		return err
	} else if len(notes) == 0 {
		return m.load(rows)
	}
	p := &pool{kek: m.keks[0], keys: map[signSlot][]storage.SigningKey{}}
	for _, slot := range rec.wants {
		k, err := newRow(p.kek, slot.use, slot.alg, m.cfg.Clock())
		if err != nil {
			return err
		}
		p.keys[slot] = append(p.keys[slot], k)
	}
	var applied []note
	var failed error // the plan's own error, already worded
	rows, err = m.store.UpdateSigningKeys(ctx, func(cur []storage.SigningKey) ([]storage.SigningKey, error) {
		// The clock is read again: the lock may have been a while coming.
		out, notes, err := op(slices.Clone(cur), m.cfg.Clock(), p)
		applied, failed = notes, err
		return out, err
	})
	if failed != nil {
		return failed
	}
	if err != nil {
		return fmt.Errorf("keys: update signing keys: %w", err)
	}
	for _, n := range applied {
		m.cfg.Logger.Log(ctx, n.level, n.msg, n.attrs...)
	}
	m.created.Add(uint64(p.made))
	return m.load(rows)
}

// chains lists the algorithms use keeps keys for, the default first.
func (m *Manager) chains(use Use) []string {
	algs := []string{m.cfg.algorithm(use)}
	if use == UseIDToken {
		for _, a := range m.cfg.ExtraIDTokenAlgorithms {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	return algs
}

// inChain reports whether r belongs to the chain of use and alg. The
// default chain takes in keys of any algorithm not kept as an extra: after
// an algorithm change, the old algorithm's keys are the chain's past.
func (m *Manager) inChain(r storage.SigningKey, use Use, alg string) bool {
	if Use(r.Use) != use {
		return false
	}
	if alg == m.cfg.algorithm(use) {
		return !m.cfg.isExtra(use, r.Algorithm)
	}
	return r.Algorithm == alg
}

func signingRow(r storage.SigningKey, now time.Time) bool {
	return !now.Before(r.PublishAt) && now.Before(r.RemoveAt) && !now.Before(r.SignFrom) && now.Before(r.SignUntil)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// schedule is the plan Run follows: drop keys past RemoveAt, give every
// chain a signing key, and pre-publish each chain's next key in time.
func (m *Manager) schedule(rows []storage.SigningKey, now time.Time, gen keyGen) ([]storage.SigningKey, []note, error) {
	first := len(rows) == 0
	var notes []note
	out := rows[:0]
	for _, r := range rows {
		if !now.Before(r.RemoveAt) {
			notes = append(notes, noteFor(slog.LevelInfo, "keys: signing key left the JWKS", r))
			continue
		}
		// RetireAfter may have grown (a longer token lifetime) since the
		// key was made; tokens it signs must still outlive it.
		if floor := r.SignUntil.Add(m.cfg.RetireAfter); r.RemoveAt.Before(floor) {
			r.RemoveAt = floor
			notes = append(notes, noteFor(slog.LevelInfo, "keys: signing key kept published longer, for the configured retireAfter", r))
		}
		out = append(out, r)
	}
	for _, use := range uses {
		for _, alg := range m.chains(use) {
			var err error
			out, notes, err = m.scheduleChain(out, notes, now, gen, use, alg, first)
			if err != nil {
				return nil, nil, err
			}
		}
	}
	return out, notes, nil
}

func (m *Manager) scheduleChain(out []storage.SigningKey, notes []note, now time.Time, gen keyGen, use Use, alg string, first bool) ([]storage.SigningKey, []note, error) {
	c := &m.cfg
	signing := false
	for _, r := range out {
		if m.inChain(r, use, alg) && signingRow(r, now) {
			signing = true
		}
	}

	if !signing {
		// First start, a revocation, or no replica ran for longer than
		// the pre-publication: a key must sign now, and cannot be
		// pre-published. It signs until the chain's next key, if one is
		// already waiting.
		until := now.Add(c.RotationPeriod)
		kept := out[:0]
		for _, r := range out {
			if m.inChain(r, use, alg) && r.SignFrom.After(now) {
				if r.Algorithm != alg {
					continue // an old algorithm's successor: not wanted any more
				}
				if r.SignFrom.Before(until) {
					until = r.SignFrom
				}
			}
			kept = append(kept, r)
		}
		out = kept
		k, err := gen.newKey(use, alg, now)
		if err != nil {
			return nil, nil, err
		}
		k.PublishAt, k.SignFrom, k.SignUntil, k.RemoveAt = now, now, until, until.Add(c.RetireAfter)
		if first {
			notes = append(notes, noteFor(slog.LevelInfo, "keys: first signing key created", k))
		} else {
			notes = append(notes, noteFor(slog.LevelWarn, "keys: no key was signing; a new key signs at once, without pre-publication", k))
		}
		return append(out, k), notes, nil
	}

	tail := -1
	for i, r := range out {
		if Use(r.Use) == use && r.Algorithm == alg && r.SignUntil.After(now) &&
			(tail < 0 || r.SignUntil.After(out[tail].SignUntil)) {
			tail = i
		}
	}
	if tail < 0 {
		// The configured algorithm changed: a key of the old one signs.
		// The new algorithm's key is pre-published like any successor,
		// and the old chain stops signing when it starts.
		signFrom := now.Add(c.PrePublish)
		kept := out[:0]
		for _, r := range out {
			if m.inChain(r, use, alg) {
				if !r.SignFrom.Before(signFrom) {
					continue // an old successor that would never sign
				}
				if r.SignUntil.After(signFrom) {
					r.SignUntil = signFrom
					r.RemoveAt = signFrom.Add(c.RetireAfter)
				}
			}
			kept = append(kept, r)
		}
		out = kept
		k, err := gen.newKey(use, alg, now)
		if err != nil {
			return nil, nil, err
		}
		k.PublishAt, k.SignFrom, k.SignUntil, k.RemoveAt = now, signFrom, signFrom.Add(c.RotationPeriod), signFrom.Add(c.RotationPeriod+c.RetireAfter)
		notes = append(notes, noteFor(slog.LevelInfo, "keys: algorithm changed; new key pre-published", k))
		return append(out, k), notes, nil
	}

	// The successor is made one refresh interval before it is strictly
	// due, so that whichever replica ticks first still gives it the full
	// pre-publication and the schedule does not drift.
	t := out[tail]
	if now.Before(t.SignUntil.Add(-(c.PrePublish + c.RefreshInterval))) {
		return out, notes, nil
	}
	signFrom := laterOf(t.SignUntil, now.Add(c.PrePublish))
	if signFrom.After(t.SignUntil) {
		// Late (every replica was down): the current key signs on
		// until its successor has been published long enough.
		out[tail].SignUntil = signFrom
		out[tail].RemoveAt = laterOf(t.RemoveAt, signFrom.Add(c.RetireAfter))
	}
	k, err := gen.newKey(use, alg, now)
	if err != nil {
		return nil, nil, err
	}
	k.PublishAt, k.SignFrom, k.SignUntil, k.RemoveAt = now, signFrom, signFrom.Add(c.RotationPeriod), signFrom.Add(c.RotationPeriod+c.RetireAfter)
	notes = append(notes, noteFor(slog.LevelInfo, "keys: rotation: next key pre-published", k))
	return append(out, k), notes, nil
}

// Refresh re-reads storage, makes any rotation that is due (exactly one
// replica does), drops keys past RemoveAt, and loads the result. Run calls
// it every RefreshInterval.
func (m *Manager) Refresh(ctx context.Context) error {
	return m.update(ctx, m.schedule)
}

// Run keeps the keys in step with storage and the schedule until ctx is
// done. Errors are logged and retried at the next tick: a replica that
// cannot reach storage keeps signing with what it has, and its signing key
// lasts at least PrePublish past the moment a successor was due.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
				m.cfg.Logger.Error("keys: refresh failed", "err", err)
			}
		}
	}
}

// Rotate starts a rotation of every chain now. Unless now is true, the new
// keys are pre-published and sign PrePublish from now, and a chain that
// already has a key waiting is left alone. With now true they sign at once:
// verifiers whose JWKS cache predates them will fail until they refetch,
// and other replicas keep signing with the old keys for up to
// RefreshInterval.
func (m *Manager) Rotate(ctx context.Context, now bool) error {
	return m.update(ctx, func(rows []storage.SigningKey, t time.Time, gen keyGen) ([]storage.SigningKey, []note, error) {
		c := &m.cfg
		var notes []note
		for _, use := range uses {
			for _, alg := range m.chains(use) {
				signFrom := t.Add(c.PrePublish)
				until := signFrom.Add(c.RotationPeriod)
				if now {
					signFrom, until = t, t.Add(c.RotationPeriod)
				}
				waiting := false
				for _, r := range rows {
					if m.inChain(r, use, alg) && r.SignFrom.After(t) {
						waiting = true
						if now && r.Algorithm == alg && r.SignFrom.Before(until) {
							until = r.SignFrom
						}
					}
				}
				if waiting && !now {
					continue
				}
				for i, r := range rows {
					if m.inChain(r, use, alg) && !r.SignFrom.After(t) && r.SignUntil.After(signFrom) {
						// It signs no later than signFrom, so it need stay
						// published only RetireAfter beyond.
						rows[i].SignUntil = signFrom
						rows[i].RemoveAt = signFrom.Add(c.RetireAfter)
					}
				}
				k, err := gen.newKey(use, alg, t)
				if err != nil {
					return nil, nil, err
				}
				k.PublishAt, k.SignFrom, k.SignUntil, k.RemoveAt = t, signFrom, until, until.Add(c.RetireAfter)
				msg := "keys: rotation started; next key pre-published"
				if now {
					msg = "keys: rotated at once, without pre-publication"
				}
				notes = append(notes, noteFor(slog.LevelWarn, msg, k))
				rows = append(rows, k)
			}
		}
		rows, more, err := m.schedule(rows, t, gen)
		return rows, append(notes, more...), err
	})
}

// Revoke removes the key kid from storage, and so from the JWKS, at once:
// tokens it signed stop verifying. If it was signing, a fresh key signs
// from now on, without pre-publication. Other replicas drop it within
// RefreshInterval. An unknown kid gives an error wrapping
// storage.ErrNotFound.
func (m *Manager) Revoke(ctx context.Context, kid string) error {
	return m.update(ctx, func(rows []storage.SigningKey, t time.Time, gen keyGen) ([]storage.SigningKey, []note, error) {
		i := slices.IndexFunc(rows, func(r storage.SigningKey) bool { return r.ID == kid })
		if i < 0 {
			return nil, nil, fmt.Errorf("keys: revoke %q: %w", kid, storage.ErrNotFound)
		}
		n := noteFor(slog.LevelError, "keys: SIGNING KEY REVOKED: removed from the JWKS; every token it signed is now invalid", rows[i])
		rows = slices.Delete(rows, i, i+1)
		rows, more, err := m.schedule(rows, t, gen)
		return rows, append([]note{n}, more...), err
	})
}
