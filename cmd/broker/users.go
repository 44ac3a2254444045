package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
)

func users(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		return errors.New("usage: broker users import|show|list|disable|enable|delete|link|unlink|grant-admin|revoke-admin|consents|revoke-consent --config FILE [args]")
	}
	switch args[0] {
	case "import":
		return usersImport(ctx, args[1:], stdout, stderr, env)
	case "show":
		return usersShow(ctx, args[1:], stdout, stderr, env)
	case "list", "disable", "enable", "delete", "link", "unlink", "grant-admin", "revoke-admin", "consents", "revoke-consent":
		return usersAdmin(ctx, args[0], args[1:], stdout, stderr, env)
	default:
		return fmt.Errorf("unknown users command %q (want import, show, list, disable, enable, delete, link, unlink, grant-admin, revoke-admin, consents or revoke-consent)", args[0])
	}
}

// usersAdmin runs the user commands that share broker.Admin with the
// admin API (and so write its audit events).
func usersAdmin(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	usage := map[string]string{
		"list":    "broker users list --config FILE [--after UUID] [--limit N]",
		"disable": "broker users disable --config FILE EMAIL|UUID",
		"enable":  "broker users enable --config FILE EMAIL|UUID",
		"delete":  "broker users delete --config FILE --yes EMAIL|UUID",
		"link":    "broker users link --config FILE EMAIL|UUID CONNECTOR SUBJECT",
		"unlink":  "broker users unlink --config FILE EMAIL|UUID CONNECTOR SUBJECT",
		// The role lets a person use the admin scope; a machine client's
		// admin rights are its scopes, set with broker clients.
		"grant-admin":  "broker users grant-admin --config FILE EMAIL|UUID",
		"revoke-admin": "broker users revoke-admin --config FILE EMAIL|UUID",
		// What a person allowed third-party clients; revoking it revokes
		// the client's refresh tokens for them too.
		"consents":       "broker users consents --config FILE EMAIL|UUID",
		"revoke-consent": "broker users revoke-consent --config FILE EMAIL|UUID CLIENT_ID",
	}[cmd]
	f := newAdminFlags("users "+cmd, stderr)
	after := f.fs.String("after", "", "list: start after this user id (the last of the previous page)")
	limit := f.fs.Int("limit", 100, "list: users per page")
	yes := f.fs.Bool("yes", false, "delete: really delete the user, their identities, sessions and tokens")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	want := map[string]int{"list": 0, "disable": 1, "enable": 1, "delete": 1, "link": 3, "unlink": 3, "grant-admin": 1, "revoke-admin": 1, "consents": 1, "revoke-consent": 2}[cmd]
	if f.fs.NArg() != want {
		return errors.New("usage: " + usage)
	}
	if cmd == "delete" && !*yes {
		return errors.New("deleting a user cannot be undone; add --yes")
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	adm := broker.NewAdmin(cfg, store, nil)
	ref := f.fs.Arg(0)
	switch cmd {
	case "list":
		list, err := adm.ListUsers(ctx, *after, *limit)
		if err != nil {
			return err
		}
		for _, u := range list {
			state := ""
			if u.Disabled {
				state = "  (disabled)"
			}
			if len(u.Roles) > 0 {
				state += "  (" + strings.Join(u.Roles, ", ") + ")"
			}
			fmt.Fprintf(stdout, "%s  %s  %s%s\n", u.ID, u.Email, u.Name, state)
		}
		if len(list) == *limit {
			fmt.Fprintf(stdout, "more: --after %s\n", list[len(list)-1].ID)
		}
		return nil
	case "disable":
		err = adm.DisableUser(ctx, admin.ActorCLI, ref)
	case "enable":
		err = adm.EnableUser(ctx, admin.ActorCLI, ref)
	case "delete":
		err = adm.DeleteUser(ctx, admin.ActorCLI, ref)
	case "link":
		err = adm.LinkIdentity(ctx, admin.ActorCLI, ref, f.fs.Arg(1), f.fs.Arg(2))
	case "unlink":
		err = adm.UnlinkIdentity(ctx, admin.ActorCLI, ref, f.fs.Arg(1), f.fs.Arg(2))
	case "grant-admin":
		err = adm.GrantAdmin(ctx, admin.ActorCLI, ref)
	case "revoke-admin":
		err = adm.RevokeAdmin(ctx, admin.ActorCLI, ref)
	case "consents":
		list, err := adm.Consents(ctx, ref)
		if err != nil {
			return err
		}
		for _, c := range list {
			resource := c.Resource
			if resource == "" {
				resource = "(the client's own)"
			}
			fmt.Fprintf(stdout, "%s  %s  %s  %s\n", c.ClientID, resource, strings.Join(c.Scopes, " "), c.GrantedAt.UTC().Format(time.RFC3339))
		}
		return nil
	case "revoke-consent":
		err = adm.RevokeConsent(ctx, admin.ActorCLI, ref, f.fs.Arg(1))
	}
	if err != nil {
		return err
	}
	// Back-channel logout needs a running broker's keys and delivery: the
	// admin API sends it for the sessions these end, this command does not.
	const untold = " (its clients were not notified over the back channel; the admin API does that)"
	done := map[string]string{"disable": "disabled; refresh tokens and sessions revoked" + untold, "enable": "enabled", "delete": "deleted" + untold, "link": "linked", "unlink": "unlinked",
		"grant-admin": "granted the admin role", "revoke-admin": "no longer holds the admin role; the admin API refuses their tokens from now on",
		"revoke-consent": "no longer allows " + f.fs.Arg(1) + "; its refresh tokens for them are revoked"}[cmd]
	fmt.Fprintf(stdout, "user %s %s\n", ref, done)
	return nil
}

// importLine is one line of an import file.
type importLine struct {
	ID            string           `json:"id"`
	Email         string           `json:"email"`
	EmailVerified bool             `json:"email_verified"`
	Name          string           `json:"name"`
	Identities    []importIdentity `json:"identities"`
}

type importIdentity struct {
	Connector string `json:"connector"`
	Subject   string `json:"subject"`
}

// lineError names a line of the import file and the field at fault.
type lineError struct {
	line  int
	field string
	err   error
}

func (e *lineError) Error() string {
	if e.field == "" {
		return fmt.Sprintf("line %d: %v", e.line, e.err)
	}
	return fmt.Sprintf("line %d: %s: %v", e.line, e.field, e.err)
}

// parseImportLine reads one JSON object: id (a UUID, kept as is), email,
// email_verified, name, identities [{connector, subject}]. Unknown fields
// are errors, so a misspelt field is not silently dropped.
func parseImportLine(data []byte) (storage.ImportUser, error) {
	var l importLine
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return storage.ImportUser{}, &lineError{err: fmt.Errorf("not a JSON object of the import format: %w", err)}
	}
	if dec.More() {
		return storage.ImportUser{}, &lineError{err: errors.New("more than one JSON value on the line")}
	}
	id, err := uuid.Parse(l.ID)
	if err != nil {
		return storage.ImportUser{}, &lineError{field: "id", err: fmt.Errorf("%q is not a UUID", l.ID)}
	}
	u := storage.ImportUser{ID: id.String(), EmailVerified: l.EmailVerified, Name: strings.TrimSpace(l.Name)}
	if l.Email != "" {
		if u.Email, err = upstream.NormalizeEmail(l.Email); err != nil {
			return storage.ImportUser{}, &lineError{field: "email", err: fmt.Errorf("%q is not an email address", l.Email)}
		}
	} else if l.EmailVerified {
		return storage.ImportUser{}, &lineError{field: "email_verified", err: errors.New("true without an email")}
	}
	for i, ii := range l.Identities {
		if ii.Connector == "" || ii.Subject == "" {
			return storage.ImportUser{}, &lineError{field: fmt.Sprintf("identities[%d]", i), err: errors.New("needs a connector and a subject")}
		}
		u.Identities = append(u.Identities, storage.ImportIdentity{Connector: ii.Connector, Subject: ii.Subject})
	}
	return u, nil
}

// readImport parses a whole import file, returning the users and the line
// each came from. Blank lines are skipped.
func readImport(r io.Reader) ([]storage.ImportUser, []int, error) {
	var out []storage.ImportUser
	var lines []int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		u, err := parseImportLine(sc.Bytes())
		if err != nil {
			le := err.(*lineError)
			le.line = n
			return nil, nil, le
		}
		out = append(out, u)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	return out, lines, nil
}

func usersImport(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	f := newAdminFlags("users import", stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() != 1 {
		return errors.New("usage: broker users import --config FILE USERS.jsonl")
	}
	path := f.fs.Arg(0)
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	list, lines, err := readImport(file)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	_, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	res, err := store.ImportUsers(ctx, list, time.Now())
	var ie *storage.ImportError
	if errors.As(err, &ie) && ie.Index >= 0 && ie.Index < len(lines) {
		return fmt.Errorf("%s: %w; nothing was imported", path, &lineError{line: lines[ie.Index], field: ie.Field, err: ie.Err})
	}
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	if err := auditCLI(ctx, store, "users.import", "file:"+path, map[string]string{
		"users_created": fmt.Sprint(res.UsersCreated), "identities_created": fmt.Sprint(res.IdentitiesCreated),
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d lines read; %d users and %d identities created (others already present) in %v\n",
		len(list), res.UsersCreated, res.IdentitiesCreated, time.Since(start).Round(time.Millisecond))
	return nil
}

func usersShow(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	f := newAdminFlags("users show", stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() != 1 {
		return errors.New("usage: broker users show --config FILE EMAIL|UUID")
	}
	cfg, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := broker.NewAdmin(cfg, store, nil).FindUser(ctx, f.fs.Arg(0))
	if err != nil {
		return err
	}
	roles := "none"
	if len(u.Roles) > 0 {
		roles = strings.Join(u.Roles, ", ")
	}
	fmt.Fprintf(stdout, "id:             %s\nemail:          %s\nemail_verified: %t\nname:           %s\ndisabled:       %t\nroles:          %s\ncreated:        %s\n",
		u.ID, u.Email, u.EmailVerified, u.Name, u.Disabled, roles, u.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(stdout, "identities:     %d\n", len(u.Identities))
	for _, id := range u.Identities {
		fmt.Fprintf(stdout, "  %s  %s  (last login %s)\n", id.Connector, id.Subject, formatTime(id.LastLogin))
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
