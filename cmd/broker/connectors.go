package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
)

// callbackTypes are the connector types that send the browser to an
// upstream and take it back at <issuer>/callback/<id>; otp and legacy
// connectors have no callback. A test checks every registry type is
// classified here.
var callbackTypes = map[string]bool{
	"oidc": true, "auth0": true, "azuread": true, "workos": true,
	"otp": false, "legacy": false,
}

// callbackURL is the redirect URI to register at the connector's
// upstream, or "" for a connector without one.
func callbackURL(issuer string, cc broker.ConnectorConfig) string {
	if !callbackTypes[cc.Type] {
		return ""
	}
	return strings.TrimSuffix(issuer, "/") + "/callback/" + cc.ID
}

// logConnectors writes one line per connector at start, with the
// callback URL to register upstream.
func logConnectors(ctx context.Context, log *slog.Logger, cfg broker.Config) {
	for _, cc := range cfg.Connectors {
		u := callbackURL(cfg.Issuer, cc)
		if u == "" {
			u = "none"
		}
		log.InfoContext(ctx, "connector", "id", cc.ID, "type", cc.Type, "callback_url", u)
	}
}

// connectorsCommand: broker connectors list [--config FILE], which
// without --config lists the development instance's connectors; the
// other subcommands manage stored connectors (storedConnectorsCommand).
func connectorsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	const usage = "usage: broker connectors list [--config FILE] [--issuer URL]\n" +
		"       broker connectors create|update|show|disable|enable|delete|test --config FILE [flags] CONNECTOR_ID"
	if len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] != "list" {
		return storedConnectorsCommand(ctx, args, stdout, stderr, env, usage)
	}
	fs := flag.NewFlagSet("connectors list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML); none lists the development instance's")
	addr := fs.String("addr", envOr(env, "BROKER_ADDR", ""), "listen address (env BROKER_ADDR), as serve takes it")
	issuer := fs.String("issuer", envOr(env, "BROKER_ISSUER", ""), "issuer URL (env BROKER_ISSUER), as serve takes it")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	cfg, err := loadConfig(*configPath, *addr, *issuer, env)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tNAME\tDOMAINS\tCALLBACK URL")
	for _, cc := range cfg.Connectors {
		domains, cb := strings.Join(cc.Domains, ","), callbackURL(cfg.Issuer, cc)
		if domains == "" {
			domains = "-"
		}
		if cb == "" {
			cb = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cc.ID, cc.Type, cc.Name, domains, cb)
	}
	if cfg.Storage.Type == "postgres" {
		fmt.Fprintln(tw, "(connectors of the configuration file; stored ones: broker connectors show ID, or GET /admin/v1/connectors)")
	}
	return tw.Flush()
}

// storedConnectorsCommand creates, changes, shows, disables, enables,
// deletes and tests connectors stored at run time, as the admin API does
// (broker/admin): settings are checked against the upstream before
// anything is stored, and sealed under BROKER_SECRET.
func storedConnectorsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), usage string) error {
	cmd := args[0]
	f := newAdminFlags("connectors "+cmd, stderr)
	typ := f.fs.String("type", "", "create: connector type (oidc, auth0, azuread, workos)")
	name := f.fs.String("name", "", "display name")
	org := f.fs.String("org", "", "id of the organisation whose identity provider it is")
	settings := f.fs.String("settings", "", `the type's settings as JSON ('{"issuer": ...}'), or @FILE; secrets left out keep their value on update`)
	timeout := f.fs.String("timeout", "", "bound on one request's calls to the upstream (e.g. 5s)")
	recheck := f.fs.String("recheck-interval", "", "how old an upstream check may be before a refresh asks again (e.g. 1h)")
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	if f.fs.NArg() != 1 {
		return errors.New(usage)
	}
	id := f.fs.Arg(0)
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	secret, ok, err := broker.RootSecretFromEnv(env)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("set BROKER_SECRET (or BROKER_SECRET_FILE): stored connectors' settings are sealed under it")
	}
	previous, err := broker.PreviousRootSecretsFromEnv(env)
	if err != nil {
		return err
	}
	adm, err := broker.NewConnectorAdmin(cfg, store, nil, secret, previous)
	if err != nil {
		return err
	}
	readSettings := func() (json.RawMessage, error) {
		if path, ok := strings.CutPrefix(*settings, "@"); ok {
			return os.ReadFile(path)
		}
		return json.RawMessage(*settings), nil
	}
	var info admin.ConnectorInfo
	switch cmd {
	case "create":
		s, err := readSettings()
		if err != nil {
			return fmt.Errorf("--settings: %w", err)
		}
		info, err = adm.CreateConnector(ctx, admin.ActorCLI, admin.ConnectorSpec{ID: id, Type: *typ, Name: *name, OrgID: *org,
			Settings: s, Timeout: *timeout, RecheckInterval: *recheck})
		if err != nil {
			return err
		}
	case "update":
		var u admin.ConnectorUpdate
		var err error
		// Only the flags given change anything.
		f.fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "name":
				u.Name = name
			case "org":
				u.OrgID = org
			case "settings":
				u.Settings, err = readSettings()
			case "timeout":
				u.Timeout = timeout
			case "recheck-interval":
				u.RecheckInterval = recheck
			}
		})
		if err != nil {
			return fmt.Errorf("--settings: %w", err)
		}
		if info, err = adm.UpdateConnector(ctx, admin.ActorCLI, id, u); err != nil {
			return err
		}
	case "show":
		if info, err = adm.GetConnector(ctx, id); err != nil {
			return err
		}
	case "disable", "enable":
		if info, err = adm.SetConnectorDisabled(ctx, admin.ActorCLI, id, cmd == "disable"); err != nil {
			return err
		}
	case "delete":
		if err := adm.DeleteConnector(ctx, admin.ActorCLI, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "connector %s deleted; running brokers drop it within organizations.pollInterval\n", id)
		return nil
	case "test":
		if err := adm.TestConnector(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "connector %s: the upstream answers as configured\n", id)
		return nil
	default:
		return errors.New(usage)
	}
	out, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}
