// Package testpostfix starts a real Postfix (Debian's postfix package) for
// tests: a private instance with its own config_directory, queue_directory
// and data_directory in a temporary directory, SMTP on a loopback port,
// its log in a file, and nothing of the system's Postfix used or changed
// (the system's /etc/postfix is read only for postfix-files, as
// meta_directory). Postfix's master must start as root: without root the
// test is skipped, and fails in CI; a missing postfix likewise
// (internal/testenv).
package testpostfix

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/testenv"
)

// Options shape an instance.
type Options struct {
	// MainCF is more main.cf text (parameters override the defaults
	// written before it). DIR in it is replaced by the instance's
	// directory.
	MainCF string
	// Files are more files written into the config directory (name →
	// content; DIR replaced as in MainCF), such as an alias or transport
	// table in texthash: format.
	Files map[string]string
	// Aliases and Maps name files of Files to compile before the start,
	// with postalias and postmap (for alias_maps = hash:DIR/etc/NAME and
	// the like), as an operator does.
	Aliases, Maps []string
}

// Server is a running Postfix.
type Server struct {
	// Dir holds everything: etc (config), queue, data, maillog.
	Dir string
	// Addr is smtpd's host:port on 127.0.0.1.
	Addr string
	// Config is the config directory (postfix -c).
	Config string

	postfix string
}

// master.cf: the services a loopback MTA with local, LMTP and SMTP
// delivery needs, none chrooted.
const masterCF = `%s inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`

// Start writes an instance's configuration and starts it; it is stopped
// and deleted when tb ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	path := testenv.Command(tb, "postfix", "postfix")
	if os.Geteuid() != 0 {
		testenv.Unavailable(tb, "the Postfix test needs root (Postfix's master starts as root)")
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		tb.Fatalf("no user postfix: is Debian's postfix package installed? %v", err)
	}
	// /tmp, short and traversable by the unprivileged users Postfix and
	// its pipe commands run as (a test's TempDir is mode 0700).
	dir, err := os.MkdirTemp("/tmp", "tpfx")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	s := &Server{Dir: dir, Addr: testenv.FreePort(tb), Config: filepath.Join(dir, "etc"), postfix: path}
	for _, d := range []string{"etc", "queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pf.Gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		tb.Fatal(err)
	}
	main := fmt.Sprintf(`compatibility_level = 3.6
config_directory = %[1]s/etc
queue_directory = %[1]s/queue
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
myhostname = mx.test
mydomain = test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
lmtp_host_lookup = native
smtputf8_enable = no
biff = no
alias_database =
delay_warning_time = 0
queue_run_delay = 2s
minimal_backoff_time = 2s
maximum_backoff_time = 4s
`, dir) + strings.ReplaceAll(o.MainCF, "DIR", dir)
	write(tb, filepath.Join(dir, "etc", "main.cf"), main)
	write(tb, filepath.Join(dir, "etc", "master.cf"), fmt.Sprintf(masterCF, s.Addr))
	for name, body := range o.Files {
		write(tb, filepath.Join(dir, "etc", name), strings.ReplaceAll(body, "DIR", dir))
	}
	for _, name := range o.Aliases {
		s.compile(tb, "postalias", name)
	}
	for _, name := range o.Maps {
		s.compile(tb, "postmap", name)
	}
	tb.Cleanup(func() {
		_ = exec.Command(path, "-c", s.Config, "stop").Run()
		// master exits within a second or two of stop.
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(filepath.Join(dir, "data", "master.lock")); err != nil {
				break
			}
			if b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid")); err != nil || !alive(strings.TrimSpace(string(b))) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if tb.Failed() {
			tb.Logf("Postfix log:\n%s", s.Log())
		}
		os.RemoveAll(dir)
	})
	// check creates the queue directories with their owners and modes.
	for _, cmd := range []string{"check", "start"} {
		if out, err := exec.Command(path, "-c", s.Config, cmd).CombinedOutput(); err != nil {
			tb.Fatalf("postfix -c %s %s: %v\n%s\n%s", s.Config, cmd, err, out, s.Log())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("Postfix does not listen on %s within 30s:\n%s", s.Addr, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// compile runs postalias or postmap on a file of the config directory.
func (s *Server) compile(tb testing.TB, prog, name string) {
	tb.Helper()
	bin := testenv.Command(tb, prog, "postfix")
	if out, err := exec.Command(bin, "-c", s.Config, filepath.Join(s.Config, name)).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", prog, name, err, out)
	}
}

// Log returns Postfix's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "maillog"))
	return string(b)
}

// Flush asks Postfix to try its deferred mail now.
func (s *Server) Flush(tb testing.TB) {
	tb.Helper()
	if out, err := exec.Command(s.postfix, "-c", s.Config, "flush").CombinedOutput(); err != nil {
		tb.Logf("postfix flush: %v\n%s", err, out)
	}
}

func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join("/proc", strconv.Itoa(n)))
	return err == nil
}

func write(tb testing.TB, path, body string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
}
