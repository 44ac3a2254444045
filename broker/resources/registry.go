package resources

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Registry finds registered resources: the configuration file's, then
// those stored. It keeps a copy of the stored ones for at most StoredTTL,
// so that a token request costs no store read, and a change made on any
// replica holds within StoredTTL; a change made through this replica's
// admin API drops the copy at once (Forget).
type Registry struct {
	configured map[string]storage.Resource
	store      storage.Resources
	now        func() time.Time

	mu       sync.Mutex // serializes reloads: one store read however many requests wait
	stored   map[string]storage.Resource
	loadedAt time.Time
}

// StoredTTL is how long the registry serves its copy of the stored
// resources: as long as a stored connector or organisation may take to
// reach every replica (organizations.pollInterval's default).
const StoredTTL = 2 * time.Second

// NewRegistry returns the registry of the configured resources, which
// must each pass Check and be listed once, and of those in store.
func NewRegistry(configured []storage.Resource, store storage.Resources, now func() time.Time) (*Registry, error) {
	r := &Registry{configured: make(map[string]storage.Resource, len(configured)), store: store, now: now}
	for _, res := range configured {
		if _, ok := r.configured[res.ID]; ok {
			return nil, fmt.Errorf("resources: %q is configured twice", res.ID)
		}
		r.configured[res.ID] = res
	}
	return r, nil
}

// Forget drops the copy of the stored resources: the next lookup reads
// them again. The admin API calls it after every change.
func (r *Registry) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored = nil
}

// storedResources returns the copy of the stored resources, read again
// when it is older than StoredTTL. A store that cannot answer fails the
// lookup (docs/design.md rule 2).
func (r *Registry) storedResources(ctx context.Context) (map[string]storage.Resource, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stored != nil && r.now().Sub(r.loadedAt) < StoredTTL {
		return r.stored, nil
	}
	list, err := r.store.ListResources(ctx)
	if err != nil {
		return nil, fmt.Errorf("resources: list stored: %w", err)
	}
	stored := make(map[string]storage.Resource, len(list))
	for _, res := range list {
		stored[res.ID] = res
	}
	r.stored, r.loadedAt = stored, r.now()
	return stored, nil
}

// CheckStored refuses a stored resource whose id the configuration file
// also gives: which of the two would govern tokens would be unclear.
// The broker checks it at start.
func (r *Registry) CheckStored(ctx context.Context) error {
	stored, err := r.store.ListResources(ctx)
	if err != nil {
		return fmt.Errorf("resources: list stored: %w", err)
	}
	for _, s := range stored {
		if _, ok := r.configured[s.ID]; ok {
			return fmt.Errorf("resources: %q is both in the configuration file and stored; delete one (broker resources delete)", s.ID)
		}
	}
	return nil
}

// Lookup finds the registered resource id. ok is false for an id that is
// not registered; an error means the store could not answer.
func (r *Registry) Lookup(ctx context.Context, id string) (res storage.Resource, ok bool, err error) {
	if res, ok := r.configured[id]; ok {
		return res, true, nil
	}
	// Only an https URL can be registered (Check): the audiences and
	// client ids of today's clients cost no lookup.
	if r.store == nil || !strings.HasPrefix(id, "https://") || checkID(id) != nil {
		return storage.Resource{}, false, nil
	}
	stored, err := r.storedResources(ctx)
	if err != nil {
		return storage.Resource{}, false, err
	}
	res, ok = stored[id]
	return res, ok, nil
}

// Errors of Granted and Choose that refuse the request are *oidc.Error
// (invalid_target); any other means the store could not answer.

// Granted checks the resource and audience values of an authorization
// request and returns the audience the grant holds. Without a registered
// resource among them it is what the client's audiences allow
// (AudienceFor); otherwise every registered value is granted, and every
// other must be one of the client's audiences. A value that is neither is
// invalid_target (RFC 8707 section 2).
func (r *Registry) Granted(ctx context.Context, client *clients.Client, values []string) ([]string, error) {
	var others []string
	registered := 0
	for _, v := range dedupe(values) {
		res, ok, err := r.Lookup(ctx, v)
		if err != nil {
			return nil, err
		}
		if ok && client.ThirdParty() && !res.ThirdParty {
			return nil, thirdPartyRefused(res.ID)
		}
		if ok {
			registered++
		} else {
			others = append(others, v)
		}
	}
	if registered == 0 {
		aud, err := client.AudienceFor(values)
		if err != nil {
			return nil, oidc.ErrInvalidTarget().WithDescription("%s", err)
		}
		return aud, nil
	}
	if len(others) > 0 {
		if _, err := client.AudienceFor(others); err != nil {
			return nil, oidc.ErrInvalidTarget().WithDescription("%s", err)
		}
	}
	return dedupe(values), nil
}

// Choose picks the target of a token request: the access token's
// audience, and the registered resource it names alone (nil for none). requested are its resource
// and audience values; granted, when not nil, is what the grant holds
// (the authorization's audience, a refresh family's, a subject token's):
// every requested value must be in it, since a token request narrows and
// never widens (RFC 8707 section 2.2), and with none requested the target
// is the whole of it. A registered resource must be the one target: its
// token's aud is exactly itself. Other values are the client's audiences
// (AudienceFor), as before resources were registered, which a deleted
// resource no longer is.
func (r *Registry) Choose(ctx context.Context, client *clients.Client, requested, granted []string) (audience []string, resource *storage.Resource, err error) {
	requested = dedupe(requested)
	for _, v := range requested {
		if granted != nil && !slices.Contains(granted, v) {
			return nil, nil, oidc.ErrInvalidTarget().WithDescription("resource %q was not granted; a token request can only narrow the audience", v)
		}
	}
	values := requested
	if len(values) == 0 {
		values = granted
	}
	var found *storage.Resource
	var others []string
	for _, v := range values {
		res, ok, err := r.Lookup(ctx, v)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			others = append(others, v)
			continue
		}
		if found != nil {
			return nil, nil, oidc.ErrInvalidTarget().WithDescription("a registered resource is asked for alone; name one resource (%s, ...)", values[0])
		}
		found = &res
	}
	if found != nil && client.ThirdParty() && !found.ThirdParty {
		return nil, nil, thirdPartyRefused(found.ID)
	}
	if found != nil && len(others) > 0 {
		return nil, nil, oidc.ErrInvalidTarget().WithDescription("resource %q is asked for alone; name it with the resource parameter", found.ID)
	}
	if found != nil {
		return []string{found.ID}, found, nil
	}
	if audience, err = client.AudienceFor(values); err != nil {
		return nil, nil, oidc.ErrInvalidTarget().WithDescription("%s", err)
	}
	return audience, nil, nil
}

// thirdPartyRefused is the answer to a third-party client asking for a
// resource that does not accept third parties.
func thirdPartyRefused(id string) error {
	return oidc.ErrInvalidTarget().WithDescription("resource %q does not accept third-party clients", id)
}

// dedupe returns values without empty and repeated ones, in order.
func dedupe(values []string) []string {
	var out []string
	for _, v := range values {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
