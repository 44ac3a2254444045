// Command broker runs the identity broker and administers its data.
//
//	broker serve [--config FILE] [--addr ADDR] [--issuer URL] [--migrate]
//	broker migrate --config FILE
//	broker users import --config FILE USERS.jsonl
//	broker users show --config FILE EMAIL|UUID
//	broker users list|disable|enable|delete|link|unlink --config FILE ...
//	broker users grant-admin|revoke-admin --config FILE EMAIL|UUID
//	broker users consents --config FILE EMAIL|UUID
//	broker users revoke-consent --config FILE EMAIL|UUID CLIENT_ID
//	broker connectors list [--config FILE]
//	broker clients create|list|show|update|delete|rotate-secret --config FILE ...
//	broker resources create|list|show|update|delete --config FILE ...
//	broker registration-tokens create|list|revoke --config FILE ...
//	broker orgs create|list|show|update|delete --config FILE ...
//	broker orgs domains add|list|verify|remove --config FILE ORG ...
//	broker orgs members add|list|role|remove --config FILE ORG ...
//	broker sessions list --config FILE --user EMAIL|UUID
//	broker sessions revoke --config FILE -- ID
//	broker keys list|rotate [--now] --config FILE
//	broker keys revoke --config FILE -- KID
//	broker secrets rotate --config FILE
//	broker version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "broker:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: broker <command> [flags]

commands:
  serve            run the broker (with no --config: a development instance)
  migrate          apply the database migrations
  users import     import users from a JSON-lines file, keeping their UUIDs
  users show       print a user, their roles and identities
  users list|disable|enable|delete|link|unlink
                   administer users (delete needs --yes)
  users grant-admin|revoke-admin
                   give or take a person's admin role (the admin scope)
  users consents|revoke-consent
                   list or take back what a person allowed third-party clients
  connectors list  list the connectors with their callback URLs
  clients create|list|show|update|delete|rotate-secret
                   manage stored clients (a new secret is shown once)
  resources create|list|show|update|delete
                   manage protected resources (RFC 8707) tokens are issued for
  registration-tokens create|list|revoke
                   manage initial access tokens for client registration (RFC 7591)
  orgs create|list|show|update|delete
                   manage organisations (delete needs --yes)
  orgs domains add|list|verify|remove
                   claim a domain, verify it by DNS TXT (or --assert --reason)
  orgs members add|list|role|remove
                   manage an organisation's members
  sessions list    list a user's single-sign-on sessions (--user EMAIL|UUID)
  sessions revoke  end a session and revoke its refresh tokens
  keys list        list signing keys
  keys rotate      start a key rotation (--now: sign with the new key at once)
  keys revoke      remove a compromised key from the JWKS at once
  secrets rotate   re-encrypt signing keys under a new root secret
  version          print the version
`

// run is main without the process: testable, with its environment passed in.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, env)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr, env)
	case "users":
		return users(ctx, args[1:], stdout, stderr, env)
	case "connectors":
		return connectorsCommand(ctx, args[1:], stdout, stderr, env)
	case "clients":
		return clientsCommand(ctx, args[1:], stdout, stderr, env)
	case "resources":
		return resourcesCommand(ctx, args[1:], stdout, stderr, env)
	case "registration-tokens":
		return registrationTokensCommand(ctx, args[1:], stdout, stderr, env)
	case "orgs":
		return orgsCommand(ctx, args[1:], stdout, stderr, env)
	case "sessions":
		return sessionsCommand(ctx, args[1:], stdout, stderr, env)
	case "keys":
		return keysCommand(ctx, args[1:], stdout, stderr, env)
	case "secrets":
		return secretsCommand(ctx, args[1:], stdout, stderr, env)
	case "version":
		fmt.Fprintln(stdout, "broker", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q is not one of text, json", format)
	}
}
