package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func resource(id string) storage.Resource {
	return storage.Resource{
		ID:             id,
		Scopes:         []string{"tools:read", "tools:call"},
		AccessTokenTTL: 5 * time.Minute,
		ThirdParty:     true,
		CreatedAt:      t0,
		UpdatedAt:      t0,
	}
}

func testResourceCRUD(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	list, err := s.ListResources(ctx)
	wantErr(t, "ListResources(empty)", err, nil)
	if len(list) != 0 {
		t.Fatalf("ListResources of an empty store = %+v", list)
	}
	b, a := resource("https://b.example.com/mcp"), resource("https://a.example.com/mcp")
	a.Scopes, a.AccessTokenTTL, a.ThirdParty = nil, 0, false
	wantErr(t, "CreateResource(b)", s.CreateResource(ctx, b), nil)
	wantErr(t, "CreateResource(a)", s.CreateResource(ctx, a), nil)
	wantErr(t, "CreateResource(b again)", s.CreateResource(ctx, b), storage.ErrAlreadyExists)
	got, err := s.GetResource(ctx, b.ID)
	wantErr(t, "GetResource", err, nil)
	wantEqual(t, "resource", got, b)
	got.Scopes[0] = "X"
	got, _ = s.GetResource(ctx, b.ID)
	wantEqual(t, "resource after its copy was changed", got, b)
	list, err = s.ListResources(ctx)
	wantErr(t, "ListResources", err, nil)
	wantEqual(t, "resources", list, []storage.Resource{a, b})

	got, err = s.UpdateResource(ctx, b.ID, func(r storage.Resource) (storage.Resource, error) {
		r.ID = "ignored"
		r.Scopes = []string{"tools:read"}
		r.AccessTokenTTL = time.Minute
		r.UpdatedAt = t0.Add(time.Hour)
		return r, nil
	})
	wantErr(t, "UpdateResource", err, nil)
	want := b
	want.Scopes, want.AccessTokenTTL, want.UpdatedAt = []string{"tools:read"}, time.Minute, t0.Add(time.Hour)
	wantEqual(t, "updated resource", got, want)
	got, _ = s.GetResource(ctx, b.ID)
	wantEqual(t, "stored updated resource", got, want)

	refused := errors.New("refused")
	_, err = s.UpdateResource(ctx, b.ID, func(r storage.Resource) (storage.Resource, error) {
		r.Scopes = nil
		return r, refused
	})
	wantErr(t, "UpdateResource refused by update", err, refused)
	got, _ = s.GetResource(ctx, b.ID)
	wantEqual(t, "resource after a refused update", got, want)

	_, err = s.UpdateResource(ctx, "https://unknown.example.com", func(r storage.Resource) (storage.Resource, error) { return r, nil })
	wantErr(t, "UpdateResource(unknown)", err, storage.ErrNotFound)
	_, err = s.GetResource(ctx, "https://unknown.example.com")
	wantErr(t, "GetResource(unknown)", err, storage.ErrNotFound)

	wantErr(t, "DeleteResource", s.DeleteResource(ctx, b.ID), nil)
	wantErr(t, "DeleteResource again", s.DeleteResource(ctx, b.ID), storage.ErrNotFound)
	_, err = s.GetResource(ctx, b.ID)
	wantErr(t, "GetResource(deleted)", err, storage.ErrNotFound)
}

// testResourceConcurrentCreate checks that of several replicas creating
// one resource at once, exactly one succeeds.
func testResourceConcurrentCreate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.CreateResource(ctx, resource("https://c.example.com/mcp")) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, storage.ErrAlreadyExists):
			t.Fatalf("CreateResource: %v", err)
		}
	}
	if created != 1 {
		t.Fatalf("%d concurrent creations succeeded, want 1", created)
	}
}
