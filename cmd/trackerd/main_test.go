package main

// End-to-end tests of the command line: they build the trackerd binary once
// and run it as an operator would, on SQLite and on PostgreSQL.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/store"
)

var binary string // path of the trackerd binary built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trackerd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "trackerd")
	// Built without -race: the end-to-end tests start hundreds of
	// processes, and a race-instrumented start costs ten times more. The
	// code they run is race-tested in process by its own packages.
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build trackerd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// run runs trackerd with args in dir, with TRACKERD_CONFIG cleared.
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("trackerd %v: %v", args, err)
	}
	return r
}

// mustRun runs trackerd and fails the test unless it exits 0.
func mustRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := run(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("trackerd %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestVersionAndUsage(t *testing.T) {
	dir := t.TempDir()
	if out := mustRun(t, dir, "version"); !strings.HasPrefix(out, "trackerd ") {
		t.Errorf("trackerd version = %q, want it to start with \"trackerd \"", out)
	}
	if r := run(t, dir, "frobnicate"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("trackerd frobnicate: exit %d, stderr %q; want %d and the unknown command named", r.code, r.stderr, exitUsage)
	}
	if r := run(t, dir); r.code != exitUsage {
		t.Errorf("trackerd (no args): exit %d, want %d", r.code, exitUsage)
	}
}

func TestConfigCheckNamesEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.toml")
	bad := "[smtp]\nlisten = \"127.0.0.1:2525\"\nread_timeout = \"5 parsecs\"\nlistne = \"x\"\n\n[store]\ndriver = \"oracle\"\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "check", path}, {"-config", path, "config", "check"}, {"config", "check", "-config", path}} {
		r := run(t, dir, args...)
		if r.code == 0 {
			t.Fatalf("trackerd %v: exit 0 on a bad config", args)
		}
		for _, want := range []string{"smtp.listne", "smtp.read_timeout", "store.driver"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("trackerd %v: stderr does not name %s:\n%s", args, want, r.stderr)
			}
		}
	}
}

func TestConfigInitCheckPrint(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "config", "init")
	if _, err := os.Stat(filepath.Join(dir, "trackerd.toml")); err != nil {
		t.Fatalf("config init did not write ./trackerd.toml: %v", err)
	}
	if r := run(t, dir, "config", "init"); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("second config init: exit %d, stderr %q; want a refusal to overwrite", r.code, r.stderr)
	}
	// ./trackerd.toml is picked up with no -config.
	if out := mustRun(t, dir, "config", "check"); !strings.Contains(out, "trackerd.toml: ok") {
		t.Errorf("config check = %q, want it to name ./trackerd.toml", out)
	}

	// print redacts secrets and its output is itself a valid config.
	secret := filepath.Join(dir, "relay.pass")
	if err := os.WriteFile(secret, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = \"postgres://trackerd:s3cret@db.example.org/trackerd\"\n[outgoing]\nrelay = \"smtp://relay.example.org:25\"\nusername = \"u\"\npassword_file = %q\n", secret)
	path := filepath.Join(dir, "secret.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, dir, "config", "print", "-config", path)
	for _, leak := range []string{"s3cret", "hunter2"} {
		if strings.Contains(out, leak) {
			t.Errorf("config print leaks %q:\n%s", leak, out)
		}
	}
	printed := filepath.Join(dir, "printed.toml")
	if err := os.WriteFile(printed, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, "config", "check", printed)
}

// TestServeZeroConfig: from an empty directory, serve with no config starts,
// creates ./trackerd-data/trackerd.db, and stops cleanly on SIGTERM.
func TestServeZeroConfig(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TRACKERD_CONFIG=")
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "trackerd-data", "trackerd.db")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "trackerd ready") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("serve did not get ready within 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("serve with no config did not create %s: %v", db, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop within 30s of SIGTERM; stderr:\n%s", stderr.String())
	}
}

// cliEnv is a working directory with a config naming one store.
type cliEnv struct {
	dir    string
	config string
	opts   store.Options
}

// forEachDriver runs f against a fresh SQLite database and a fresh
// PostgreSQL database (skipped without TRACKERD_TEST_POSTGRES, a failure
// in CI).
func forEachDriver(t *testing.T, f func(t *testing.T, e *cliEnv)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		e := &cliEnv{dir: dir, config: filepath.Join(dir, "trackerd.toml"),
			opts: store.Options{Driver: "sqlite", DSN: filepath.Join(dir, "trackerd-data", "trackerd.db")}}
		writeConfig(t, e.config, "[smtp]\nlisten = \"\"\n[web]\nlisten = \"\"\n")
		f(t, e)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := freshDatabase(t, storetest.PostgresDSN(t)) // skips, or fails in CI, without PostgreSQL
		dir := t.TempDir()
		e := &cliEnv{dir: dir, config: filepath.Join(dir, "trackerd.toml"), opts: store.Options{Driver: "postgres", DSN: dsn}}
		writeConfig(t, e.config, fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = %q\n[smtp]\nlisten = \"\"\n[web]\nlisten = \"\"\n", dsn))
		f(t, e)
	})
}

func writeConfig(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freshDatabase creates a database for one test and returns its DSN.
func freshDatabase(t *testing.T, base string) string {
	t.Helper()
	db, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("cli_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return replaceDBName(base, name)
}

// replaceDBName sets dbname in a key=value DSN.
func replaceDBName(dsn, name string) string {
	var out []string
	for _, kv := range strings.Fields(dsn) {
		if !strings.HasPrefix(kv, "dbname=") {
			out = append(out, kv)
		}
	}
	return strings.Join(append(out, "dbname="+name), " ")
}

func (e *cliEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, e.dir, append([]string{"-config", e.config}, args...)...)
}

func (e *cliEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, e.dir, append([]string{"-config", e.config}, args...)...)
}

// userJSON is DESIGN §3's user shape, written out here independently of
// the web package so the test checks the contract, not the code.
type userJSON struct {
	ID        int64    `json:"id"`
	Username  string   `json:"username"`
	RealName  string   `json:"realname"`
	Address   string   `json:"address"`
	Addresses []string `json:"addresses"`
	Roles     []string `json:"roles"`
}

func TestUserCommands(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		e.mustRun(t, "user", "add", "alice@example.org", "-name", "Alice Liddell", "-roles", "user,admin")
		e.mustRun(t, "user", "add", "-name", "Other Alice", "ALICE@other.example")
		if r := e.run(t, "user", "add", "Alice@Example.org"); r.code == 0 || !strings.Contains(r.stderr, "already taken") {
			t.Errorf("user add of a taken address (other case): exit %d, stderr %q", r.code, r.stderr)
		}
		if r := e.run(t, "user", "add", "not-an-address"); r.code != exitUsage {
			t.Errorf("user add not-an-address: exit %d, want %d", r.code, exitUsage)
		}
		if r := e.run(t, "user", "add", "x@example.org", "-roles", "emperor"); r.code != exitUsage {
			t.Errorf("user add -roles emperor: exit %d, want %d", r.code, exitUsage)
		}
		e.mustRun(t, "user", "address", "add", "alice@example.org", "a.liddell@wonderland.example")
		if r := e.run(t, "user", "address", "add", "alice@other.example", "A.Liddell@wonderland.example"); r.code == 0 {
			t.Errorf("adding an alternate that belongs to another user (other case) succeeded")
		}
		e.mustRun(t, "user", "set", "a.liddell@wonderland.example", "-name", "Alice L.")

		pw := filepath.Join(e.dir, "pw")
		writeConfig(t, pw, "correct horse\n")
		e.mustRun(t, "user", "set", "alice@example.org", "-password-file", pw)
		if out := e.mustRun(t, "user", "show", "alice@example.org"); !strings.Contains(out, "password:   set") {
			t.Errorf("user show after -password-file does not show a password:\n%s", out)
		}

		var users []userJSON
		contract.Decode(t, e.mustRun(t, "user", "list", "-json"), &users)
		want := []userJSON{
			{ID: users[0].ID, Username: "alice", RealName: "Alice L.", Address: "alice@example.org",
				Addresses: []string{"a.liddell@wonderland.example"}, Roles: []string{"user", "admin"}},
			{ID: users[1].ID, Username: "alice2", RealName: "Other Alice", Address: "ALICE@other.example",
				Addresses: []string{}, Roles: []string{"user"}},
		}
		if !reflect.DeepEqual(users, want) {
			t.Errorf("user list -json =\n%+v\nwant\n%+v", users, want)
		}
		var one userJSON
		contract.Decode(t, e.mustRun(t, "user", "show", "-json", "A.LIDDELL@wonderland.example"), &one)
		if one.Address != "alice@example.org" {
			t.Errorf("user show by alternate address found %q, want alice@example.org", one.Address)
		}
		var limited []userJSON
		contract.Decode(t, e.mustRun(t, "user", "list", "-limit", "1", "-json"), &limited)
		if len(limited) != 1 {
			t.Errorf("user list -limit 1 printed %d users", len(limited))
		}

		e.mustRun(t, "user", "address", "remove", "alice@example.org", "a.liddell@wonderland.example")
		if r := e.run(t, "user", "show", "a.liddell@wonderland.example"); r.code == 0 {
			t.Errorf("user show by a removed alternate address succeeded")
		}
	})
}

func TestIssueJSON(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		e.mustRun(t, "user", "add", "alice@example.org", "-name", "Alice")
		e.mustRun(t, "user", "add", "bob@example.org", "-name", "Bob")

		// Issues are filed by the mail gateway; until then the test writes
		// them through the store API, as the gateway will.
		ctx := context.Background()
		st, err := store.Open(ctx, e.opts)
		if err != nil {
			t.Fatal(err)
		}
		created := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
		var first, second int64
		err = st.Tx(ctx, func(tx *store.Tx) error {
			alice, err := tx.UserByAddress(ctx, "alice@example.org")
			if err != nil {
				return err
			}
			bob, err := tx.UserByAddress(ctx, "bob@example.org")
			if err != nil {
				return err
			}
			is := &store.Issue{Title: "Crash on empty subject", Status: "chatting", Priority: "urgent",
				AssigneeID: bob.ID, Keywords: []string{"mailgw", "crash"}, Created: created,
				Activity: created.Add(time.Hour), CreatorID: alice.ID, ActorID: bob.ID}
			if err := tx.CreateIssue(ctx, is); err != nil {
				return err
			}
			first = is.ID
			for _, u := range []int64{alice.ID, bob.ID} {
				if _, err := tx.AddNosy(ctx, is.ID, u); err != nil {
					return err
				}
			}
			m := &store.Message{IssueID: is.ID, AuthorID: alice.ID, Date: created, MessageID: "<m1@example.org>",
				Content: "It crashes.", FullText: "It crashes.\n-- \nAlice"}
			if err := tx.CreateMessage(ctx, m); err != nil {
				return err
			}
			if err := tx.CreateFile(ctx, &store.File{MessageID: m.ID, Name: "trace.txt", Type: "text/plain", Data: []byte("panic: boom\n")}); err != nil {
				return err
			}
			m2 := &store.Message{IssueID: is.ID, AuthorID: bob.ID, Date: created.Add(time.Hour), MessageID: "<m2@example.org>",
				InReplyTo: "<m1@example.org>", References: []string{"<m1@example.org>"}, Content: "Fixed."}
			if err := tx.CreateMessage(ctx, m2); err != nil {
				return err
			}
			is2 := &store.Issue{Title: "Second", Status: "unread", Priority: "bug", Created: created, Activity: created,
				CreatorID: bob.ID, ActorID: bob.ID}
			if err := tx.CreateIssue(ctx, is2); err != nil {
				return err
			}
			second = is2.ID
			return nil
		})
		st.Close()
		if err != nil {
			t.Fatalf("seed issues: %v", err)
		}

		var list []contract.Issue
		contract.Decode(t, e.mustRun(t, "issue", "list", "-json"), &list)
		bob := "bob@example.org"
		want := []contract.Issue{
			{ID: first, Title: "Crash on empty subject", Status: "chatting", Priority: "urgent", Assignee: &bob,
				Keywords: []string{"crash", "mailgw"}, Nosy: []string{"alice@example.org", "bob@example.org"},
				Created: created, Activity: created.Add(time.Hour)},
			{ID: second, Title: "Second", Status: "unread", Priority: "bug", Keywords: []string{}, Nosy: []string{},
				Created: created, Activity: created},
		}
		if !reflect.DeepEqual(list, want) {
			t.Errorf("issue list -json =\n%+v\nwant\n%+v", list, want)
		}
		if strings.Contains(e.mustRun(t, "issue", "list", "-json"), `"messages"`) {
			t.Errorf("issue list -json carries messages; DESIGN §3 says the list has none")
		}

		// Flags after and before the positional argument.
		for _, args := range [][]string{{"issue", "show", fmt.Sprint(first), "-json"}, {"issue", "show", "-json", fmt.Sprint(first)}} {
			var d contract.IssueDetail
			contract.Decode(t, e.mustRun(t, args...), &d)
			if !reflect.DeepEqual(d.Issue, want[0]) {
				t.Errorf("%v: issue = %+v, want %+v", args, d.Issue, want[0])
			}
			if len(d.Messages) != 2 {
				t.Fatalf("%v: %d messages, want 2", args, len(d.Messages))
			}
			m := d.Messages[0]
			if m.Author != "alice@example.org" || m.MessageID != "<m1@example.org>" || m.Content != "It crashes." ||
				!m.Date.Equal(created) || len(m.Files) != 1 || m.Files[0].Name != "trace.txt" || m.Files[0].Size != 12 || m.Files[0].Type != "text/plain" {
				t.Errorf("%v: first message = %+v", args, m)
			}
			if d.Messages[1].InReplyTo != "<m1@example.org>" || d.Messages[1].Author != "bob@example.org" {
				t.Errorf("%v: second message = %+v", args, d.Messages[1])
			}
		}
		var empty contract.IssueDetail
		contract.Decode(t, e.mustRun(t, "issue", "show", fmt.Sprint(second), "-json"), &empty)
		if empty.Messages == nil {
			t.Errorf("issue show -json of an issue without messages: messages is null, want []")
		}
		if r := e.run(t, "issue", "show", "9999"); r.code == 0 || !strings.Contains(r.stderr, "no issue 9999") {
			t.Errorf("issue show 9999: exit %d, stderr %q", r.code, r.stderr)
		}
		var limited []contract.Issue
		contract.Decode(t, e.mustRun(t, "issue", "list", "-json", "-limit", "1"), &limited)
		if len(limited) != 1 {
			t.Errorf("issue list -limit 1 printed %d issues", len(limited))
		}
	})
}
