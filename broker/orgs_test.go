package broker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage"
)

// orgScopes asks for the organisation in the tokens.
const orgScopes = "openid email profile offline_access organization"

// testOrg is an organisation of slug that is the upstream organisations
// upstreamIDs.
func testOrg(slug string, upstreamIDs ...string) storage.Organization {
	return storage.Organization{ID: uuid.NewString(), Slug: slug, Name: slug + " Inc.", UpstreamIDs: upstreamIDs}
}

// withOrg stores org, holding each of verified verified, before the
// broker starts (it loads its organisations then).
func withOrg(org storage.Organization, verified ...string) envOption {
	return func(c *broker.Config, o *broker.Options) {
		ctx, now := context.Background(), time.Now()
		org.CreatedAt, org.UpdatedAt = now, now
		if err := o.Storage.CreateOrganization(ctx, org); err != nil {
			panic(fmt.Sprintf("create organisation %s: %v", org.Slug, err))
		}
		for _, d := range verified {
			if err := o.Storage.AddDomain(ctx, storage.Domain{Domain: d, OrgID: org.ID, Challenge: "c", CreatedAt: now}); err != nil {
				panic(fmt.Sprintf("add domain %s: %v", d, err))
			}
			if _, err := o.Storage.VerifyDomain(ctx, org.ID, d, "admin", now); err != nil {
				panic(fmt.Sprintf("verify domain %s: %v", d, err))
			}
		}
	}
}

// withOrgScope lets every client of the configuration ask for the
// organization scope, beside what it may ask for already.
func withOrgScope(c *broker.Config, o *broker.Options) {
	for i := range c.Clients {
		cl := &c.Clients[i]
		if len(cl.Scopes) == 0 {
			cl.Scopes = []string{"openid", "email", "profile", "offline_access"}
		}
		cl.Scopes = append(cl.Scopes, "organization")
	}
}
