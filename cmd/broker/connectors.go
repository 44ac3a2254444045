package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/idbroker/broker/broker"
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

// connectorsCommand: broker connectors list [--config FILE]. Without
// --config it lists the development instance's connectors.
func connectorsCommand(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	const usage = "usage: broker connectors list [--config FILE] [--issuer URL]"
	if len(args) == 0 || args[0] != "list" {
		return errors.New(usage)
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
	return tw.Flush()
}
