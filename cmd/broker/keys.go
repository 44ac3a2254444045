package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		return errors.New("usage: broker keys list|rotate|revoke --config FILE")
	}
	f := newAdminFlags("keys "+args[0], stderr)
	now := f.fs.Bool("now", false, "rotate: sign with the new key at once, skipping pre-publication")
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := keyManager(ctx, cfg, store, env, stderr)
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		return printKeys(ctx, m, stdout)
	case "rotate":
		if err := m.Rotate(ctx, *now); err != nil {
			return err
		}
		if err := auditCLI(ctx, store, "keys.rotate", "keys", map[string]string{"now": fmt.Sprint(*now)}); err != nil {
			return err
		}
		return printKeys(ctx, m, stdout)
	case "revoke":
		if f.fs.NArg() != 1 {
			return errors.New("usage: broker keys revoke --config FILE -- KID (a key id may begin with -)")
		}
		if err := m.Revoke(ctx, f.fs.Arg(0)); err != nil {
			return err
		}
		if err := auditCLI(ctx, store, "keys.revoke", "key:"+f.fs.Arg(0), nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s removed from the JWKS; replicas stop serving it within their refresh interval\n", f.fs.Arg(0))
		return printKeys(ctx, m, stdout)
	default:
		return fmt.Errorf("unknown keys command %q (want list, rotate or revoke)", args[0])
	}
}

// keyManager opens the signing keys as the broker would, with the root
// secret from the environment.
func keyManager(ctx context.Context, cfg broker.Config, store storage.Storage, env func(string) (string, bool), stderr io.Writer) (*keys.Manager, error) {
	secret, ok, err := broker.RootSecretFromEnv(env)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("BROKER_SECRET (or BROKER_SECRET_FILE) must be set: the signing keys are encrypted under it")
	}
	previous, err := broker.PreviousRootSecretsFromEnv(env)
	if err != nil {
		return nil, err
	}
	kekList := [][]byte{secret.KEK()}
	for _, p := range previous {
		kekList = append(kekList, p.KEK())
	}
	return keys.New(ctx, store, broker.SigningKeysConfig(cfg, kekList, slog.New(slog.NewTextHandler(stderr, nil))))
}

func printKeys(ctx context.Context, m *keys.Manager, w io.Writer) error {
	list, err := m.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tUSE\tSTATE\tPUBLISHED\tSIGNS FROM\tSIGNS UNTIL\tREMOVED AT")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.Use, k.State,
			k.PublishAt.Format(time.RFC3339), k.SignFrom.Format(time.RFC3339), k.SignUntil.Format(time.RFC3339), k.RemoveAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// secretsCommand re-encrypts the signing keys and re-seals the upstream
// refresh tokens under a new root secret.
// The procedure: set BROKER_PREVIOUS_SECRET to the old secret and
// BROKER_SECRET to the new one on every replica (they accept both), run
// this, then remove BROKER_PREVIOUS_SECRET.
func secretsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("usage: broker secrets rotate --config FILE (with BROKER_SECRET=new, BROKER_PREVIOUS_SECRET=old)")
	}
	f := newAdminFlags("secrets rotate", stderr)
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	secret, ok, err := broker.RootSecretFromEnv(env)
	if err != nil {
		return err
	}
	previous, err := broker.PreviousRootSecretsFromEnv(env)
	if err != nil {
		return err
	}
	if !ok || len(previous) == 0 {
		return errors.New("set BROKER_SECRET to the new root secret and BROKER_PREVIOUS_SECRET to the old one")
	}
	_, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	var old [][]byte
	for _, p := range previous {
		old = append(old, p.KEK())
	}
	n, err := keys.ReencryptAll(ctx, store, append(old, secret.KEK()), secret.KEK())
	if err != nil {
		return err
	}
	counts, err := broker.ResealUpstreamTokens(ctx, store, secret, previous)
	if err != nil {
		return err
	}
	connectorsResealed, err := broker.ResealConnectorSettings(ctx, store, secret, previous)
	if errors.Is(err, storage.ErrUnreadable) {
		// The others are re-sealed; this one stays as it was.
		fmt.Fprintf(stdout, "warning: %v\n", err)
	} else if err != nil {
		return err
	}
	if err := auditCLI(ctx, store, "secrets.rotate", "keys", map[string]string{
		"reencrypted":         fmt.Sprint(n),
		"connectors_resealed": fmt.Sprint(connectorsResealed),
		"upstream_resealed":   fmt.Sprint(counts.Resealed),
		"upstream_current":    fmt.Sprint(counts.Current),
		"upstream_unreadable": fmt.Sprint(counts.Unreadable),
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d signing keys re-encrypted under the new root secret\n", n)
	fmt.Fprintf(stdout, "upstream refresh tokens: %d re-sealed under the new root secret, %d already current, %d unreadable under either secret (left as they are)\n",
		counts.Resealed, counts.Current, counts.Unreadable)
	fmt.Fprintf(stdout, "stored connectors: %d re-sealed under the new root secret\n", connectorsResealed)
	fmt.Fprintln(stdout, "BROKER_PREVIOUS_SECRET can be removed once every replica runs with the new BROKER_SECRET")
	return nil
}
