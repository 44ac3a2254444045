package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
)

// registrationTokensCommand: broker registration-tokens
// create|list|revoke, the initial access tokens that let a client
// register itself at /register under registration.policy token.
func registrationTokensCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	const usage = "usage: broker registration-tokens create|list|revoke --config FILE [flags] [TOKEN_ID]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd := args[0]
	f := newAdminFlags("registration-tokens "+cmd, stderr)
	var note *string
	var expiresIn *time.Duration
	var maxUses *int
	if cmd == "create" {
		note = f.fs.String("note", "", "whom or what the token is for")
		expiresIn = f.fs.Duration("expires-in", admin.DefaultRegistrationTokenLifetime, "how long the token registers clients")
		maxUses = f.fs.Int("max-uses", 0, "how many clients it may register (0: any number until it expires)")
	}
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	wantArgs := 0
	if cmd == "revoke" {
		wantArgs = 1
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
	switch cmd {
	case "create":
		info, token, err := adm.CreateRegistrationToken(ctx, admin.ActorCLI, admin.RegistrationTokenSpec{
			Note: *note, ExpiresIn: expiresIn.String(), MaxUses: *maxUses})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "id: %s\nexpires: %s\nmax uses: %s\n\ntoken: %s\nThe token is shown this once; only its hash is stored.\n",
			info.ID, info.ExpiresAt.Format(time.RFC3339), maxUsesShown(info.MaxUses), token)
		return nil
	case "list":
		list, err := adm.ListRegistrationTokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNOTE\tUSES\tMAX USES\tEXPIRES\tSPENT")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%t\n", t.ID, t.Note, t.Uses, maxUsesShown(t.MaxUses), t.ExpiresAt.Format(time.RFC3339), t.Spent)
		}
		return tw.Flush()
	case "revoke":
		id := f.fs.Arg(0)
		if err := adm.RevokeRegistrationToken(ctx, admin.ActorCLI, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registration token %s revoked\n", id)
		return nil
	default:
		return fmt.Errorf("unknown registration-tokens command %q (want create, list or revoke)", cmd)
	}
}

func maxUsesShown(n int) string {
	if n == 0 {
		return "any"
	}
	return strconv.Itoa(n)
}
