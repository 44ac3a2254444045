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
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream/otp"
)

func users(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		return errors.New("usage: broker users import|show --config FILE ...")
	}
	switch args[0] {
	case "import":
		return usersImport(ctx, args[1:], stdout, stderr, env)
	case "show":
		return usersShow(ctx, args[1:], stdout, stderr, env)
	default:
		return fmt.Errorf("unknown users command %q (want import or show)", args[0])
	}
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
		if u.Email, err = otp.NormalizeEmail(l.Email); err != nil {
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
	_, store, err := openConfigured(ctx, *f.config, env)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := findUser(ctx, store, f.fs.Arg(0))
	if err != nil {
		return err
	}
	ids, err := store.ListIdentities(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "id:             %s\nemail:          %s\nemail_verified: %t\nname:           %s\ndisabled:       %t\ncreated:        %s\n",
		u.ID, u.Email, u.EmailVerified, u.Name, u.Disabled, u.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(stdout, "identities:     %d\n", len(ids))
	for _, id := range ids {
		fmt.Fprintf(stdout, "  %s  %s  (last login %s)\n", id.Connector, id.Subject, formatTime(id.LastLogin))
	}
	return nil
}

// findUser takes a UUID or an email address (a user's verified email).
func findUser(ctx context.Context, store storage.Users, ref string) (storage.User, error) {
	var u storage.User
	var err error
	if id, perr := uuid.Parse(ref); perr == nil {
		u, err = store.GetUser(ctx, id.String())
	} else if email, eerr := otp.NormalizeEmail(ref); eerr == nil {
		u, err = store.GetUserByEmail(ctx, email)
	} else {
		return u, fmt.Errorf("%q is neither a UUID nor an email address", ref)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return u, fmt.Errorf("no user %q", ref)
	}
	return u, err
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
