package tokens

import (
	"context"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
)

// noteClientUse records, coarsely, that a registered client obtained a
// token: registered clients unused for too long expire
// (broker/registration). The client was read from storage for this very
// request, so its LastUsedAt tells whether a write is due: at most one
// per client per storage.ClientUseGranularity, whatever the traffic, and
// none for any other client. A failed write is logged, not answered: the
// tokens are issued, and the client's next token tries again.
func (t *Issuer) noteClientUse(ctx context.Context, client *clients.Client) {
	now := t.now()
	if !client.Registered() || now.Sub(client.LastUsedAt()) < storage.ClientUseGranularity {
		return
	}
	if err := t.store.NoteClientUse(ctx, client.GetID(), now); err != nil {
		t.log.WarnContext(ctx, "recording a registered client's use failed", "client_id", client.GetID(), "err", err)
	}
}
