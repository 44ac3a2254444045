package keys

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// State is where a key is in its life at a given moment.
type State string

// States of a key.
const (
	StateScheduled State = "scheduled" // not yet published (its PublishAt is ahead)
	StatePublished State = "published" // in the JWKS, not signing yet
	StateSigning   State = "signing"   // in the JWKS and signing
	StateRetired   State = "retired"   // in the JWKS for verification, no longer signing
	StateRemoved   State = "removed"   // out of the JWKS; dropped from storage at the next refresh
)

// KeyInfo describes a stored key, without its private part.
type KeyInfo struct {
	ID        string
	Algorithm string
	Use       Use
	State     State
	CreatedAt time.Time
	PublishAt time.Time
	SignFrom  time.Time
	SignUntil time.Time
	RemoveAt  time.Time
}

// stateAt is the state of a key with these dates at now.
func stateAt(now, publishAt, signFrom, signUntil, removeAt time.Time) State {
	switch {
	case !now.Before(removeAt):
		return StateRemoved
	case now.Before(publishAt):
		return StateScheduled
	case now.Before(signFrom):
		return StatePublished
	case now.Before(signUntil):
		return StateSigning
	default:
		return StateRetired
	}
}

// List reads the keys from storage (not memory, so it shows what every
// replica will converge on) and describes them, ordered by use and then
// publication. "signing" means within its signing dates; when a key was
// revoked or rotated at once, more than one may briefly be, and the one
// with the latest SignFrom signs.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	now := m.cfg.Clock()
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyInfo{
			ID:        r.ID,
			Algorithm: r.Algorithm,
			Use:       Use(r.Use),
			State:     stateAt(now, r.PublishAt, r.SignFrom, r.SignUntil, r.RemoveAt),
			CreatedAt: r.CreatedAt,
			PublishAt: r.PublishAt,
			SignFrom:  r.SignFrom,
			SignUntil: r.SignUntil,
			RemoveAt:  r.RemoveAt,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Use != out[j].Use {
			return out[i].Use < out[j].Use
		}
		if !out[i].PublishAt.Equal(out[j].PublishAt) {
			return out[i].PublishAt.Before(out[j].PublishAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
