package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres"
)

// adminFlags are the flags every administrative command takes.
type adminFlags struct {
	fs     *flag.FlagSet
	config *string
}

func newAdminFlags(name string, stderr io.Writer) adminFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return adminFlags{fs: fs, config: fs.String("config", "", "configuration file (YAML), required")}
}

// openConfigured loads the configuration and opens its store. The
// administrative commands act on a shared store, so a memory store (which
// would vanish when the command ends) is refused.
func openConfigured(ctx context.Context, path string, env func(string) (string, bool)) (broker.Config, storage.Storage, error) {
	if path == "" {
		return broker.Config{}, nil, errors.New("--config is required")
	}
	cfg, err := broker.LoadConfig(path, env)
	if err != nil {
		return broker.Config{}, nil, err
	}
	if cfg.Storage.Type != "postgres" {
		return broker.Config{}, nil, fmt.Errorf("storage type %q: administrative commands need postgres storage (a memory store lives only inside a running broker)", cfg.Storage.Type)
	}
	store, err := postgres.Open(ctx, cfg.Storage.DSN)
	if err != nil {
		return broker.Config{}, nil, err
	}
	return cfg, store, nil
}

// auditCLI records a change made from the command line, as the admin API
// records its own: every change to users, clients, sessions and keys is in
// the audit log.
func auditCLI(ctx context.Context, store storage.Storage, action, target string, details map[string]string) error {
	err := store.AppendAudit(ctx, storage.AuditEvent{Time: time.Now(), Actor: "cli", Action: action, Target: target, Details: details})
	if err != nil {
		return fmt.Errorf("%s of %s was done, but its audit event could not be written: %w", action, target, err)
	}
	return nil
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	f := newAdminFlags("migrate", stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if *f.config == "" {
		return errors.New("--config is required")
	}
	cfg, err := broker.LoadConfig(*f.config, env)
	if err != nil {
		return err
	}
	if cfg.Storage.Type != "postgres" {
		return fmt.Errorf("storage type %q has no migrations", cfg.Storage.Type)
	}
	if err := postgres.Migrate(ctx, cfg.Storage.DSN); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database at schema version %d\n", postgres.SchemaVersion)
	return nil
}
