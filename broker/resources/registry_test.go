package resources_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/resources"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// failing is a store whose resources cannot be read.
type failing struct{ storage.Storage }

func (failing) ListResources(context.Context) ([]storage.Resource, error) {
	return nil, errors.New("store down")
}

// TestRegistry_StoredCopy: a token request costs no store read within
// StoredTTL; a change elsewhere is seen once it passes, a change here at
// once (Forget); a store that cannot answer fails the lookup.
func TestRegistry_StoredCopy(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	now := time.Now()
	clock := func() time.Time { return now }
	r, err := resources.NewRegistry(nil, store, clock)
	if err != nil {
		t.Fatal(err)
	}
	const id = "https://mcp.example.com/mcp"
	if _, ok, err := r.Lookup(ctx, id); ok || err != nil {
		t.Fatalf("before it is stored: %v %v", ok, err)
	}
	if err := store.CreateResource(ctx, storage.Resource{ID: id, Scopes: []string{"tools"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Lookup(ctx, id); ok {
		t.Error("a resource stored elsewhere was seen before StoredTTL passed")
	}
	now = now.Add(resources.StoredTTL)
	if res, ok, err := r.Lookup(ctx, id); !ok || err != nil || res.ID != id {
		t.Errorf("after StoredTTL: %+v %v %v", res, ok, err)
	}
	if err := store.DeleteResource(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.Forget()
	if _, ok, _ := r.Lookup(ctx, id); ok {
		t.Error("a resource deleted through this replica was seen after Forget")
	}

	down, _ := resources.NewRegistry(nil, failing{store}, clock)
	if _, ok, err := down.Lookup(ctx, id); ok || err == nil {
		t.Errorf("a store that cannot answer: %v %v, want an error", ok, err)
	}
	// Values that cannot be registered cost no store read.
	if _, ok, err := down.Lookup(ctx, "billing-api"); ok || err != nil {
		t.Errorf("a client id as audience: %v %v", ok, err)
	}
}
