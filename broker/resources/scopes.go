package resources

import (
	"context"
	"slices"

	"github.com/idbroker/broker/storage"
)

// ThirdPartyScopes returns the scopes of the registered resources that
// accept third-party clients, sorted and without repeats: those a client
// that registers itself (broker/registration) may ask to be allowed
// besides the broker's own. A store that cannot answer is an error.
func (r *Registry) ThirdPartyScopes(ctx context.Context) ([]string, error) {
	var out []string
	add := func(res storage.Resource) {
		if res.ThirdParty {
			out = append(out, res.Scopes...)
		}
	}
	for _, res := range r.configured {
		add(res)
	}
	if r.store != nil {
		stored, err := r.storedResources(ctx)
		if err != nil {
			return nil, err
		}
		for _, res := range stored {
			add(res)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ScopesNamed returns the scopes of the registered resources among
// values that accept third-party clients: those a third-party client
// naming them may ask for besides its own (clients.Client
// WithResourceScopes). A store that cannot answer is an error.
func (r *Registry) ScopesNamed(ctx context.Context, values []string) ([]string, error) {
	var out []string
	for _, v := range dedupe(values) {
		res, ok, err := r.Lookup(ctx, v)
		if err != nil {
			return nil, err
		}
		if ok && res.ThirdParty {
			out = append(out, res.Scopes...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
