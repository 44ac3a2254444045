package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/idbroker/broker/broker"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idbroker/broker/storage"
)

// sessionsCommand lists and ends single-sign-on sessions.
func sessionsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		return errors.New("usage: broker sessions list --config FILE --user EMAIL|UUID, or broker sessions revoke --config FILE -- ID")
	}
	switch args[0] {
	case "list":
		return sessionsList(ctx, args[1:], stdout, stderr, env)
	case "revoke":
		return sessionsRevoke(ctx, args[1:], stdout, stderr, env)
	default:
		return fmt.Errorf("unknown sessions command %q (want list or revoke)", args[0])
	}
}

func sessionsList(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	f := newAdminFlags("sessions list", stderr)
	userRef := f.fs.String("user", "", "the user's email or UUID, required")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if *userRef == "" || f.fs.NArg() != 0 {
		return errors.New("usage: broker sessions list --config FILE --user EMAIL|UUID")
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := broker.NewAdmin(cfg, store, nil).FindUser(ctx, *userRef)
	if err != nil {
		return err
	}
	now := time.Now()
	list, err := store.ListSessions(ctx, u.ID, now)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	fmt.Fprintf(stdout, "%d live sessions of %s (%s)\n", len(list), u.ID, u.Email)
	if len(list) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIGNED IN\tLAST SEEN\tENDS\tIDP\tAMR\tCLIENTS")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, formatTime(s.AuthTime), formatTime(s.LastSeenAt),
			formatTime(sessionEnd(s)), s.IDP, strings.Join(s.AMR, ","), strings.Join(s.Clients, ","))
	}
	return tw.Flush()
}

// sessionEnd is when s ends if nobody uses it: its absolute lifetime or
// its idle timeout, whichever comes first.
func sessionEnd(s storage.Session) time.Time {
	if s.IdleTTL > 0 {
		if idle := s.LastSeenAt.Add(s.IdleTTL); idle.Before(s.ExpiresAt) {
			return idle
		}
	}
	return s.ExpiresAt
}

func sessionsRevoke(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	f := newAdminFlags("sessions revoke", stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() != 1 {
		return errors.New("usage: broker sessions revoke --config FILE -- ID")
	}
	_, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	id := f.fs.Arg(0)
	s, err := store.EndSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no session %q", id)
	}
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if err := auditCLI(ctx, store, "session.revoke", "session:"+id, map[string]string{"user": s.UserID}); err != nil {
		return err
	}
	// Back-channel logout needs the broker's signing keys and clients; a
	// running broker sends it for logouts, this command does not.
	fmt.Fprintf(stdout, "session %s of user %s ended; the refresh tokens issued under it are revoked (its clients were not notified over the back channel)\n", s.ID, s.UserID)
	return nil
}
