package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
)

// orgsUsage is every organisation command, as `broker orgs` prints it.
const orgsUsage = `usage:
  broker orgs create --config FILE --slug SLUG --name NAME [--require-sso] [--upstream-id ID]...
  broker orgs list --config FILE [--after ID] [--limit N]
  broker orgs show --config FILE ORG
  broker orgs update --config FILE [--slug SLUG] [--name NAME] [--require-sso=true|false] [--upstream-id ID]... ORG
  broker orgs delete --config FILE --yes ORG
  broker orgs domains add|list|remove --config FILE ORG [DOMAIN]
  broker orgs domains verify --config FILE [--assert --reason REASON] ORG DOMAIN
  broker orgs members add --config FILE [--role member|admin] ORG EMAIL|UUID
  broker orgs members list --config FILE [--after UUID] [--limit N] ORG
  broker orgs members role --config FILE ORG EMAIL|UUID member|admin
  broker orgs members remove --config FILE ORG EMAIL|UUID
ORG is an organisation's id or slug.`

// orgsCommand runs `broker orgs ...` through the operations the admin API
// shares (broker/admin), so both write the same audit events.
func orgsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		return errors.New(orgsUsage)
	}
	cmd := args[0]
	args = args[1:]
	if cmd == "domains" || cmd == "members" {
		if len(args) == 0 {
			return errors.New(orgsUsage)
		}
		cmd, args = cmd+" "+args[0], args[1:]
	}
	f := newAdminFlags("orgs "+cmd, stderr)
	slug := f.fs.String("slug", "", "create, update: the organisation's slug (a-z, 0-9, -)")
	name := f.fs.String("name", "", "create, update: display name")
	requireSSO := f.fs.Bool("require-sso", false, "create, update: addresses of verified domains sign in through the organisation's connectors only")
	var upstreamIDs listFlag
	f.fs.Var(&upstreamIDs, "upstream-id", "create, update: an upstream organisation id it is, e.g. an Auth0 org_id or an Entra tenant id (repeatable; update replaces the list)")
	after := f.fs.String("after", "", "list: start after this id (the last of the previous page)")
	limit := f.fs.Int("limit", 100, "list: entries per page")
	yes := f.fs.Bool("yes", false, "delete: really delete the organisation, its domains and memberships")
	assert := f.fs.Bool("assert", false, "domains verify: verified on your word, without DNS (needs --reason)")
	reason := f.fs.String("reason", "", "domains verify --assert: why, for the audit log")
	role := f.fs.String("role", "member", "members add: member or admin")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	want, ok := map[string]int{"create": 0, "list": 0, "show": 1, "update": 1, "delete": 1,
		"domains add": 2, "domains list": 1, "domains verify": 2, "domains remove": 2,
		"members add": 2, "members list": 1, "members role": 3, "members remove": 2}[cmd]
	if !ok {
		return fmt.Errorf("unknown orgs command %q\n%s", cmd, orgsUsage)
	}
	if f.fs.NArg() != want {
		return errors.New(orgsUsage)
	}
	if cmd == "delete" && !*yes {
		return errors.New("deleting an organisation removes its domains and memberships and cannot be undone; add --yes")
	}
	if *reason != "" && !*assert {
		return errors.New("--reason goes with --assert")
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	adm := broker.NewAdmin(cfg, store, nil)
	org := f.fs.Arg(0)
	switch cmd {
	case "create":
		info, err := adm.CreateOrganization(ctx, admin.ActorCLI, admin.OrgSpec{Slug: *slug, Name: *name, RequireSSO: *requireSSO, UpstreamIDs: upstreamIDs})
		if err != nil {
			return err
		}
		printOrg(stdout, info)
		return nil
	case "list":
		list, err := adm.ListOrganizations(ctx, *after, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSLUG\tNAME\tREQUIRE_SSO")
		for _, o := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\n", o.ID, o.Slug, o.Name, o.RequireSSO)
		}
		if len(list) == *limit {
			fmt.Fprintf(tw, "more: --after %s\n", list[len(list)-1].ID)
		}
		return tw.Flush()
	case "show":
		info, err := adm.GetOrganization(ctx, org)
		if err != nil {
			return err
		}
		printOrg(stdout, info)
		return nil
	case "update":
		// Only the flags given change anything.
		var u admin.OrgUpdate
		f.fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "slug":
				u.Slug = slug
			case "name":
				u.Name = name
			case "require-sso":
				u.RequireSSO = requireSSO
			case "upstream-id":
				u.UpstreamIDs = (*[]string)(&upstreamIDs)
			}
		})
		info, err := adm.UpdateOrganization(ctx, admin.ActorCLI, org, u)
		if err != nil {
			return err
		}
		printOrg(stdout, info)
		return nil
	case "delete":
		if err := adm.DeleteOrganization(ctx, admin.ActorCLI, org); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "organisation %s deleted; its connectors stay, detached\n", org)
		return nil
	case "domains add":
		d, err := adm.AddDomain(ctx, admin.ActorCLI, org, f.fs.Arg(1))
		if err != nil {
			return err
		}
		printDomains(stdout, []admin.DomainInfo{d})
		fmt.Fprintf(stdout, "\nPublish the TXT record above, then: broker orgs domains verify %s %s\n", org, d.Domain)
		return nil
	case "domains list":
		list, err := adm.ListDomains(ctx, org)
		if err != nil {
			return err
		}
		printDomains(stdout, list)
		return nil
	case "domains verify":
		var d admin.DomainInfo
		if *assert {
			d, err = adm.AssertDomain(ctx, admin.ActorCLI, org, f.fs.Arg(1), *reason)
		} else {
			d, err = adm.VerifyDomain(ctx, admin.ActorCLI, org, f.fs.Arg(1))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "domain %s verified (by %s)\n", d.Domain, d.VerifiedBy)
		return nil
	case "domains remove":
		if err := adm.RemoveDomain(ctx, admin.ActorCLI, org, f.fs.Arg(1)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "domain %s removed from %s\n", f.fs.Arg(1), org)
		return nil
	case "members add":
		m, created, err := adm.AddMember(ctx, admin.ActorCLI, org, f.fs.Arg(1), *role)
		if err != nil {
			return err
		}
		if !created {
			fmt.Fprintf(stdout, "user %s is a member already, role %s\n", m.UserID, m.Role)
			return nil
		}
		fmt.Fprintf(stdout, "user %s added, role %s\n", m.UserID, m.Role)
		return nil
	case "members list":
		list, err := adm.ListMembers(ctx, org, *after, *limit)
		if err != nil {
			return err
		}
		for _, m := range list {
			fmt.Fprintf(stdout, "%s  %s\n", m.UserID, m.Role)
		}
		if len(list) == *limit {
			fmt.Fprintf(stdout, "more: --after %s\n", list[len(list)-1].UserID)
		}
		return nil
	case "members role":
		m, err := adm.SetMemberRole(ctx, admin.ActorCLI, org, f.fs.Arg(1), f.fs.Arg(2))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s is now %s\n", m.UserID, m.Role)
		return nil
	case "members remove":
		n, err := adm.RemoveMember(ctx, admin.ActorCLI, org, f.fs.Arg(1))
		if err != nil {
			return err
		}
		// As users disable: back-channel logout needs a running broker.
		fmt.Fprintf(stdout, "user %s removed; %d sessions in the organisation ended (their clients were not notified over the back channel; the admin API does that)\n", f.fs.Arg(1), n)
		return nil
	}
	return nil
}

func printOrg(w io.Writer, o admin.OrgInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("id", o.ID)
	row("slug", o.Slug)
	row("name", o.Name)
	row("require_sso", o.RequireSSO)
	row("upstream_ids", strings.Join(o.UpstreamIDs, " "))
	row("created", o.CreatedAt.Format(time.RFC3339))
	tw.Flush()
}

func printDomains(w io.Writer, ds []admin.DomainInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tVERIFIED\tTXT RECORD")
	for _, d := range ds {
		switch {
		case d.Verified:
			fmt.Fprintf(tw, "%s\tby %s, %s\t\n", d.Domain, d.VerifiedBy, d.VerifiedAt.Format(time.RFC3339))
		case d.TXTRecord != nil:
			fmt.Fprintf(tw, "%s\tno\t%s TXT %q\n", d.Domain, d.TXTRecord.Name, d.TXTRecord.Value)
		}
	}
	tw.Flush()
}
