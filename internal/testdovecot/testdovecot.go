// Package testdovecot starts a real Dovecot (Debian's dovecot-imapd and
// dovecot-pop3d) for tests: its own config, base_dir, passwd-file users
// and mail store (Maildir or mbox) in a temporary directory, IMAP and POP3
// on loopback ports, each plain (with STARTTLS/STLS offered) and with
// implicit TLS, under a self-signed certificate generated for the test.
// Nothing of the system's Dovecot (its config, service or data) is used.
//
// A missing dovecot skips the test, or fails it in CI (internal/testenv).
// Several servers may run at once, in one test process or in several.
package testdovecot

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/trackerd/trackerd/internal/testcert"
	"github.com/trackerd/trackerd/internal/testenv"
)

// Options shape a server. The zero value gives one user, "tracker" with
// password "secret", and Maildir storage.
type Options struct {
	// Users maps user names to passwords; nil means {"tracker": "secret"}.
	Users map[string]string
	// Mbox stores mail in mbox files instead of Maildir.
	Mbox bool
}

// Server is a running Dovecot.
type Server struct {
	// Dir holds everything of this server (config, sockets, mail, log).
	Dir string
	// IMAP, IMAPS, POP3 and POP3S are the listeners' host:port on
	// 127.0.0.1. IMAP and POP3 offer STARTTLS and STLS.
	IMAP, IMAPS, POP3, POP3S string
	// CAFile is the PEM file of the server's self-signed certificate
	// (valid for 127.0.0.1 and localhost), and Roots a pool holding it,
	// for clients that should verify the server.
	CAFile string
	Roots  *x509.CertPool
	// Users are the users and their passwords.
	Users map[string]string

	tb     testing.TB
	conf   string
	binary string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a server for tb and stops it when tb ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	bin := testenv.Command(tb, "dovecot", "dovecot-imapd")
	if !exists("/usr/lib/dovecot/pop3") && !exists("/usr/libexec/dovecot/pop3") {
		// POP3 comes in its own Debian package.
		testenv.Unavailable(tb, "dovecot's pop3 is not installed (install the Debian package dovecot-pop3d to run this test)")
	}
	users := o.Users
	if users == nil {
		users = map[string]string{"tracker": "secret"}
	}
	// Not tb.TempDir: its parents are private to root, and Dovecot's mail
	// processes run as an unprivileged user that must reach the mail
	// directory. The path is also kept short: Dovecot's sockets live in
	// base_dir and a socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "testdovecot-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	s := &Server{Dir: dir, Users: users, tb: tb, binary: bin,
		IMAP: testenv.FreePort(tb), IMAPS: testenv.FreePort(tb), POP3: testenv.FreePort(tb), POP3S: testenv.FreePort(tb)}

	s.CAFile, _, s.Roots = testcert.Files(tb, dir)

	var pw bytes.Buffer
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", u, users[u])
	}
	write(tb, filepath.Join(dir, "passwd"), pw.Bytes(), 0o644)

	uid, gid, loginUser, internalUser := identities(tb)
	mail := filepath.Join(dir, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chown(mail, uid, gid); err != nil {
		tb.Fatal(err)
	}
	location := "maildir:" + mail + "/%u"
	if o.Mbox {
		location = "mbox:" + mail + "/%u:INBOX=" + mail + "/%u/inbox"
	}
	s.conf = filepath.Join(dir, "dovecot.conf")
	write(tb, s.conf, []byte(fmt.Sprintf(config,
		dir, loginUser, internalUser, location, uid, gid, mail,
		host(s.IMAP), port(s.IMAP), host(s.IMAPS), port(s.IMAPS),
		host(s.POP3), port(s.POP3), host(s.POP3S), port(s.POP3S))), 0o644)
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// config is the whole Dovecot configuration; Start fills it in.
const config = `# Written by internal/testdovecot for one test run.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = testdovecot-%[1]s
default_login_user = %[2]s
default_internal_user = %[3]s
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login apop
auth_failure_delay = 0
first_valid_uid = 1
first_valid_gid = 1
# Tests (and several trackerd instances) open many sessions at once.
mail_max_userip_connections = 1000
mail_location = %[4]s
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[6]d home=%[7]s/%%u
}
# No authentication penalty: tests log in with wrong passwords on purpose.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    address = %[8]s
    port = %[9]s
  }
  inet_listener imaps {
    address = %[10]s
    port = %[11]s
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = %[12]s
    port = %[13]s
  }
  inet_listener pop3s {
    address = %[14]s
    port = %[15]s
    ssl = yes
  }
}
`

// Start starts the server again after Stop (Start already starts it).
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatal("testdovecot: already running")
	}
	cmd := exec.Command(s.binary, "-F", "-c", s.conf)
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so a stop reaches every process it forked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("testdovecot: start %s: %v", s.binary, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range []string{s.IMAP, s.IMAPS, s.POP3, s.POP3S} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				s.tb.Fatalf("testdovecot: dovecot exited at start: %s\n%s", out.String(), s.Log())
			default:
			}
			if time.Now().After(deadline) {
				s.stopLocked()
				s.tb.Fatalf("testdovecot: %s not listening after 20s: %s\n%s", addr, out.String(), s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Stop stops the server (SIGTERM to its process group, SIGKILL after
// ten seconds) and waits for it. The mail stays, for a later Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Children of the master (login and mail processes) leave with it;
	// give stragglers of the group a last kill.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd = nil
}

// Log returns Dovecot's log so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return string(b)
}

// Dial logs user in over plain IMAP, for a test to put mail in or look at
// it. The client is logged out when tb ends.
func (s *Server) Dial(tb testing.TB, user string) *imapclient.Client {
	tb.Helper()
	c := s.dial(tb, user)
	tb.Cleanup(func() { c.Logout().Wait(); c.Close() })
	return c
}

func (s *Server) dial(tb testing.TB, user string) *imapclient.Client {
	tb.Helper()
	c, err := imapclient.DialInsecure(s.IMAP, nil)
	if err != nil {
		tb.Fatalf("testdovecot: dial %s: %v", s.IMAP, err)
	}
	if err := c.Login(user, s.Users[user]).Wait(); err != nil {
		c.Close()
		tb.Fatalf("testdovecot: login %s: %v\n%s", user, err, s.Log())
	}
	return c
}

// Append puts mails into user's mailbox (created if missing) over IMAP.
func (s *Server) Append(tb testing.TB, user, mailbox string, mails ...[]byte) {
	tb.Helper()
	c := s.dial(tb, user)
	defer func() { c.Logout().Wait(); c.Close() }()
	Append(tb, c, mailbox, mails...)
}

// Append puts mails into mailbox through c, creating the mailbox when
// missing. It works with any IMAP server, the in-memory one too.
func Append(tb testing.TB, c *imapclient.Client, mailbox string, mails ...[]byte) {
	tb.Helper()
	if !strings.EqualFold(mailbox, "INBOX") {
		_ = c.Create(mailbox, nil).Wait() // an existing mailbox is fine
	}
	for _, m := range mails {
		cmd := c.Append(mailbox, int64(len(m)), nil)
		if _, err := cmd.Write(m); err != nil {
			tb.Fatalf("testdovecot: append: %v", err)
		}
		if err := cmd.Close(); err != nil {
			tb.Fatalf("testdovecot: append: %v", err)
		}
		if _, err := cmd.Wait(); err != nil {
			tb.Fatalf("testdovecot: append to %s: %v", mailbox, err)
		}
	}
}

// Clear deletes every message of user's mailbox.
func (s *Server) Clear(tb testing.TB, user, mailbox string) {
	tb.Helper()
	c := s.dial(tb, user)
	defer func() { c.Logout().Wait(); c.Close() }()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		tb.Fatalf("testdovecot: select %s: %v", mailbox, err)
	}
	all := imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		tb.Fatalf("testdovecot: clear %s: %v", mailbox, err)
	}
	if err := c.Expunge().Close(); err != nil {
		tb.Fatalf("testdovecot: clear %s: %v", mailbox, err)
	}
}

// Count returns how many messages user's mailbox holds, and how many of
// them are flagged \Seen; a mailbox that does not exist holds none.
func (s *Server) Count(tb testing.TB, user, mailbox string) (total, seen int) {
	tb.Helper()
	c := s.dial(tb, user)
	defer func() { c.Logout().Wait(); c.Close() }()
	return Count(tb, c, mailbox)
}

// Count is Server.Count through any IMAP client.
func Count(tb testing.TB, c *imapclient.Client, mailbox string) (total, seen int) {
	tb.Helper()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return 0, 0
		}
		tb.Fatalf("testdovecot: status %s: %v", mailbox, err)
	}
	return int(*st.NumMessages), int(*st.NumMessages) - int(*st.NumUnseen)
}

// TLSConfig returns a client TLS config that trusts the server's
// certificate.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.Roots, ServerName: "127.0.0.1"}
}

// identities picks who Dovecot's processes run as. As root: mail
// processes as nobody, login and internal processes as Debian's dovenull
// and dovecot users when they exist (they come with the package), else
// nobody. As another user: everything as that user.
func identities(tb testing.TB) (uid, gid int, login, internal string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			tb.Fatal(err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		return uid, gid, u.Username, u.Username
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		tb.Fatalf("testdovecot: no user nobody: %v", err)
	}
	uid, _ = strconv.Atoi(nobody.Uid)
	gid, _ = strconv.Atoi(nobody.Gid)
	login, internal = "nobody", "nobody"
	if _, err := user.Lookup("dovenull"); err == nil {
		login = "dovenull"
	}
	if _, err := user.Lookup("dovecot"); err == nil {
		internal = "dovecot"
	}
	return uid, gid, login, internal
}

func write(tb testing.TB, path string, b []byte, mode os.FileMode) {
	tb.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		tb.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
