package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
)

// resourcesCommand: broker resources create|list|show|update|delete,
// the protected resources (RFC 8707) stored beside the configuration
// file's, which list and show include, read-only.
func resourcesCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	const usage = "usage: broker resources create|list|show|update|delete --config FILE [flags] [RESOURCE_URL]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd := args[0]
	f := newAdminFlags("resources "+cmd, stderr)
	var scopes listFlag
	var ttl *string
	var thirdParty *bool
	if cmd == "create" || cmd == "update" {
		f.fs.Var(&scopes, "scope", "scope its access tokens may carry (repeatable; update replaces the list)")
		ttl = f.fs.String("access-token-ttl", "", "lifetime of its access tokens (e.g. 5m), at most tokens.accessTokenTTL; empty for that")
		thirdParty = f.fs.Bool("third-party", false, "third-party clients may ask for it")
	}
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	wantArgs := 1
	if cmd == "list" {
		wantArgs = 0
	}
	if f.fs.NArg() != wantArgs {
		return errors.New(usage)
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	adm := broker.NewAdmin(cfg, store, nil)
	id := f.fs.Arg(0)
	switch cmd {
	case "create":
		info, err := adm.CreateResource(ctx, admin.ActorCLI, admin.ResourceSpec{ID: id, Scopes: scopes, AccessTokenTTL: *ttl, ThirdParty: *thirdParty})
		if err != nil {
			return err
		}
		printResource(stdout, info)
		return nil
	case "list":
		list, err := adm.ListResources(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tSOURCE\tSCOPES\tTOKEN TTL\tTHIRD PARTY")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", r.ID, r.Source, strings.Join(r.Scopes, " "), ttlShown(r.AccessTokenTTL), r.ThirdParty)
		}
		return tw.Flush()
	case "show":
		info, err := adm.GetResource(ctx, id)
		if err != nil {
			return err
		}
		printResource(stdout, info)
		return nil
	case "update":
		// Only the flags given change anything.
		var u admin.ResourceUpdate
		f.fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "scope":
				u.Scopes = (*[]string)(&scopes)
			case "access-token-ttl":
				u.AccessTokenTTL = ttl
			case "third-party":
				u.ThirdParty = thirdParty
			}
		})
		info, err := adm.UpdateResource(ctx, admin.ActorCLI, id, u)
		if err != nil {
			return err
		}
		printResource(stdout, info)
		return nil
	case "delete":
		if err := adm.DeleteResource(ctx, admin.ActorCLI, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "resource %s deleted\n", id)
		return nil
	default:
		return fmt.Errorf("unknown resources command %q (want create, list, show, update or delete)", cmd)
	}
}

// ttlShown is a resource's token lifetime as list and show print it.
func ttlShown(ttl string) string {
	if ttl == "" {
		return "(the broker's)"
	}
	return ttl
}

func printResource(w io.Writer, r admin.ResourceInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("resource", r.ID)
	row("source", r.Source)
	row("scopes", strings.Join(r.Scopes, " "))
	row("access_token_ttl", ttlShown(r.AccessTokenTTL))
	row("third_party", strconv.FormatBool(r.ThirdParty))
	if r.CreatedAt != nil {
		row("created", r.CreatedAt.Format(time.RFC3339))
	}
	tw.Flush()
}
