package tokens

import (
	"bytes"
	"context"
	"errors"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
)

// recheck asks the upstream about the family's user again when the
// last check is older than the connector's recheckInterval, using the
// upstream refresh token kept (sealed) with the family. A refusal there
// (user blocked or deleted) revokes the family; an unreachable upstream
// fails the refresh without deciding anything.
//
// A family whose connector is gone (deleted or disabled at run time, or
// taken out of the configuration) is revoked: nobody could sign in through
// it now, and an organisation that removes its identity provider means its
// people to be signed out, not to keep refreshing until the family expires.
func (t *Issuer) recheck(ctx context.Context, fam storage.RefreshFamily) error {
	conn := t.upstreams.Get(fam.IDP)
	if fam.IDP != "" && conn == nil {
		if err := t.RevokeGrant(ctx, fam.ID); err != nil {
			return t.failures.Store(ctx, "revoke family of a removed connector", err)
		}
		return answer.InvalidGrant(ctx, t.log, "the sign-in provider of this login is no longer configured; sign in again", "connector", fam.IDP)
	}
	if len(fam.UpstreamRefreshToken) == 0 {
		return nil
	}
	refresher, ok := conn.(upstream.Refresher)
	if !ok || t.now().Sub(fam.UpstreamCheckedAt) < t.upstreams.RecheckInterval(fam.IDP) {
		return nil
	}
	token, err := t.sealer.Open(fam.UpstreamRefreshToken)
	if err == nil {
		var id upstream.Identity
		upstreamCtx, cancel := t.upstreams.Context(ctx, fam.IDP)
		id, err = refresher.Refresh(upstreamCtx, string(token))
		cancel()
		if err == nil {
			next := fam.UpstreamRefreshToken
			if id.RefreshToken != "" && id.RefreshToken != string(token) {
				if next, err = t.sealer.Seal([]byte(id.RefreshToken)); err != nil {
					return t.failures.Store(ctx, "seal upstream token", err)
				}
			}
			if err := t.store.UpdateRefreshFamilyUpstream(ctx, fam.ID, next, t.now()); err != nil {
				return t.failures.Store(ctx, "record upstream check", err)
			}
			// The session and the families single sign-on made from it
			// hold the same token, which a single-use upstream (WorkOS)
			// now refuses: their next re-check would read as the user
			// being refused and end the session. This refresh succeeded
			// either way, so a failure here is logged, not returned.
			if fam.SessionID != "" && !bytes.Equal(next, fam.UpstreamRefreshToken) {
				if err := t.store.UpdateSessionUpstream(ctx, fam.SessionID, fam.UpstreamRefreshToken, next); err != nil {
					t.log.WarnContext(ctx, "recording rotated upstream token on the session failed", "sid", fam.SessionID, "err", err)
				}
			}
			return nil
		}
	}
	if errors.Is(err, upstream.ErrUnavailable) {
		t.log.WarnContext(ctx, "upstream re-check unavailable", "connector", fam.IDP, "err", err)
		return answer.TemporarilyUnavailable()
	}
	if revokeErr := t.RevokeGrant(ctx, fam.ID); revokeErr != nil {
		return t.failures.Store(ctx, "revoke family after upstream refusal", revokeErr)
	}
	// The browser session this family came from would otherwise keep
	// signing the user in to other applications.
	if fam.SessionID != "" {
		ended, err := t.store.EndSession(ctx, fam.SessionID)
		switch {
		case err == nil:
			t.log.InfoContext(ctx, "session ended", "sid", ended.ID, "user_id", ended.UserID, "by", "upstream refusal")
			if t.sessionEnded != nil {
				t.sessionEnded(ctx, ended)
			}
		case !errors.Is(err, storage.ErrNotFound):
			return t.failures.Store(ctx, "end session after upstream refusal", err)
		}
	}
	return answer.InvalidGrant(ctx, t.log, "the identity provider no longer accepts this user; sign in again", "connector", fam.IDP, "err", err)
}
