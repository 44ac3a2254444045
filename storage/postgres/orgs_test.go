package postgres_test

import (
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// Replicas poll OrgsGeneration to know when to reload: a change made
// through one Store moves the number every other Store on the database
// reads, and a refused change moves it for none.
func TestOrgsGenerationAcrossReplicas(t *testing.T) {
	db := pgtest.New(t)
	a, b := db.Open(t), db.Open(t)
	ctx := t.Context()
	before, err := b.OrgsGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := storage.Organization{ID: "0a000000-0000-4000-8000-00000000000a", Slug: "acme", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := a.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	after, err := b.OrgsGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatalf("a change through one replica left the generation another reads at %d", after)
	}
	o.ID = "0b000000-0000-4000-8000-00000000000b" // same slug: refused
	if err := b.CreateOrganization(ctx, o); err == nil {
		t.Fatal("a second organisation took the slug")
	}
	if g, _ := a.OrgsGeneration(ctx); g != after {
		t.Fatalf("a refused change moved the generation from %d to %d", after, g)
	}
}
