package docs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// TestReadme_ShellExamplesRun runs the README's ```sh blocks in order,
// with bash, against the broker built from this tree: the first part
// against the development instance, everything from the block that
// writes broker.yaml on against a fresh Postgres database (created here,
// dropped at the end; BROKER_TEST_DATABASE_URL names the server, and
// without it that part is skipped, except under CI=true, where it fails).
//
// Info strings:
//
//   - ```sh: run; a non-zero exit, or an OAuth error in its output
//     ("error":), fails the test. Variables a block exports are seen by
//     the blocks after it.
//   - ```sh serve: starts a broker; it runs in the background (stopping
//     the one before) until it answers /healthz.
//   - ```sh no-test: not run: it needs an outside service (an Auth0
//     token, a legacy service, a JWT signed by a client's key), runs for
//     minutes (the load tool), or is this very test command.
//   - ```yaml file=NAME, ```json file=NAME: written to NAME in the
//     working directory before anything runs.
//
// What the test replaces, so the commands run as printed:
//
//   - "go run ./cmd/broker" by the binary built once here;
//   - "127.0.0.1:8080" by a free address (also BROKER_ADDR);
//   - PASTE_THE_CODE by the code of a login the test does as the README
//     says: the authorization URL printed just before, the email, the code
//     read from the broker's log;
//   - SESSION_ID by the first session of ada@example.com, whom the test
//     signs in to the Postgres broker (client web, one-time code) first;
//   - KID by the key `keys rotate` just published;
//   - the Postgres superuser DSN, the role and the database "broker" by
//     the test server's DSN and a role and database of this run.
func TestReadme_ShellExamplesRun(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root, _ := filepath.Abs("../..")
	blocks, err := Blocks(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := filepath.Join(t.TempDir(), "broker")
	build := exec.Command("go", "build", "-o", bin, "./cmd/broker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	r := &readmeRun{t: t, work: work, addr: addr, state: filepath.Join(work, ".state.env")}
	r.replace = []string{"go run ./cmd/broker", bin, "127.0.0.1:8080", addr}
	t.Cleanup(r.stopServer)

	for _, b := range blocks {
		if name, ok := b.Flag("file"); ok {
			if err := os.WriteFile(filepath.Join(work, name), []byte(r.substitute(b.Text)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(r.state, []byte("export BROKER_ADDR="+addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var authorizeURL string
	ran, postgres := 0, false
	for _, b := range blocks {
		if name, _ := b.Flag("file"); name == "broker.yaml" && !postgres {
			postgres = true
			r.usePostgres()
		}
		if b.Lang == "" && strings.HasPrefix(b.Text, "http://127.0.0.1:8080/authorize?") {
			authorizeURL = r.substitute(strings.TrimSpace(b.Text))
		}
		if b.Lang != "sh" {
			continue
		}
		where := fmt.Sprintf("README.md:%d", b.Line)
		if _, skip := b.Flag("no-test"); skip {
			t.Logf("%s: not run (no-test)", where)
			continue
		}
		text := b.Text
		if strings.Contains(text, "PASTE_THE_CODE") {
			text = strings.ReplaceAll(text, "PASTE_THE_CODE", r.otpLogin(authorizeURL, "ada@example.com"))
		}
		if strings.Contains(text, "SESSION_ID") {
			r.otpLogin("http://"+addr+"/authorize?"+url.Values{
				"client_id": {"web"}, "response_type": {"code"}, "scope": {"openid email"},
				"redirect_uri": {"http://127.0.0.1:3000/callback"}, "state": {"s"},
				"code_challenge": {testenv.NewPKCE().Challenge}, "code_challenge_method": {"S256"},
			}.Encode(), "ada@example.com")
			text = strings.ReplaceAll(text, "SESSION_ID",
				`"$(go run ./cmd/broker sessions list --config broker.yaml --user ada@example.com | awk 'NR==3 {print $1}')"`)
		}
		text = regexp.MustCompile(`(keys revoke .*) KID\b`).ReplaceAllString(text,
			`${1} "$$(go run ./cmd/broker keys list --config broker.yaml | awk '$$4 == "published" {print $$1; exit}')"`)
		text = r.substitute(text)
		if _, ok := b.Flag("serve"); ok {
			r.startServer(where, text)
		} else {
			r.runBlock(where, text)
		}
		if t.Failed() {
			return // the blocks after depend on this one
		}
		ran++
	}
	t.Logf("%d shell blocks ran", ran)
	if ran < 10 {
		t.Errorf("only %d shell blocks ran: is the extraction broken?", ran)
	}
}

type readmeRun struct {
	t           *testing.T
	work, addr  string
	state       string   // the exported variables, carried between blocks
	replace     []string // old, new pairs
	server      *exec.Cmd
	exited      chan struct{} // closed when server has exited
	serverLog   *testenv.SyncBuffer
	serverWhere string
}

func (r *readmeRun) substitute(s string) string {
	return strings.NewReplacer(r.replace...).Replace(s)
}

// usePostgres makes a role and a database for this run, dropped at the
// end, and points the README's names at them.
func (r *readmeRun) usePostgres() {
	t := r.t
	base := os.Getenv(pgtest.EnvDSN)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true: the README's Postgres examples must run in CI", pgtest.EnvDSN)
		}
		t.Skipf("%s is not set: the README's Postgres examples are skipped (the development instance's ran)", pgtest.EnvDSN)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	adminURL := *u
	adminURL.Path, adminURL.RawQuery = "/postgres", ""
	name := pgtest.RandomName("broker_readme_")
	ctx := context.Background()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	t.Cleanup(func() {
		r.stopServer()
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
		if err := exec("DROP ROLE IF EXISTS " + name); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	r.replace = append(r.replace,
		"postgres://postgres@127.0.0.1:5432/postgres", adminURL.String(),
		"CREATE ROLE broker ", "CREATE ROLE "+name+" ",
		"CREATE DATABASE broker OWNER broker", "CREATE DATABASE "+name+" OWNER "+name,
		"postgres://broker:broker@127.0.0.1:5432/broker?", "postgres://"+name+":broker@"+u.Host+"/"+name+"?",
	)
}

// runBlock runs one block with the variables of the blocks before it.
func (r *readmeRun) runBlock(where, text string) {
	r.t.Helper()
	script := "set -eo pipefail\n. " + r.state + "\n" + text + "\nexport -p > " + r.state + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = r.work
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte(`"error":`)) {
		r.t.Errorf("%s failed (%v):\n%s\noutput:\n%s\nbroker log (%s):\n%s", where, err, text, out, r.serverWhere, r.serverLogTail())
		return
	}
	r.t.Logf("%s ran", where)
}

func (r *readmeRun) serverLogTail() string {
	if r.serverLog == nil {
		return "(none)"
	}
	s := r.serverLog.String()
	return s[max(0, len(s)-3000):]
}

// startServer stops the broker before it and starts the block's in the
// background, waiting until it answers.
func (r *readmeRun) startServer(where, text string) {
	t := r.t
	r.stopServer()
	cmd := exec.Command("bash", "-c", ". "+r.state+"\nexec "+strings.TrimSpace(text))
	cmd.Dir = r.work
	r.serverLog = &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = r.serverLog, r.serverLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.server, r.serverWhere, r.exited = cmd, where, exited
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("%s: broker serving", where)
				return
			}
		}
		select {
		case <-exited:
			t.Errorf("%s: the broker exited:\n%s", where, r.serverLog)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Errorf("%s: the broker did not answer:\n%s", where, r.serverLog)
}

func (r *readmeRun) stopServer() {
	if r.server == nil {
		return
	}
	r.server.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.server.Process.Kill()
		<-r.exited
	}
	r.server = nil
}

var codeInLog = regexp.MustCompile(`one-time code.* to=(\S+) code=(\S+)`)

// otpLogin signs email in as the README says: the authorization URL,
// the email, the code from the broker's log. It returns the code the
// client gets.
func (r *readmeRun) otpLogin(authorizeURL, email string) string {
	t := r.t
	t.Helper()
	if authorizeURL == "" {
		t.Fatal("no authorization URL before the block that needs a code")
	}
	b := testenv.NewBrowser(t, false, r.addr)
	page := b.Get(authorizeURL)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `name="email"`) {
		t.Fatalf("authorize: want the email page, got %d at %s: %s", page.Status, page.URL, page.Body)
	}
	page = b.Submit(page, "/login", url.Values{"email": {email}})
	var code string
	for deadline := time.Now().Add(5 * time.Second); code == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range codeInLog.FindAllStringSubmatch(r.serverLog.String(), -1) {
			if m[1] == email {
				code = m[2]
			}
		}
	}
	if code == "" {
		t.Fatalf("no one-time code for %s in the broker's log:\n%s", email, r.serverLogTail())
	}
	page = b.Submit(page, "/login/code", url.Values{"code": {code}})
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("code: want a redirect to the client with a code, got %d: %s", page.Status, page.Body)
	}
	return page.Location.Query().Get("code")
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
