// Package testpg starts a throwaway PostgreSQL server that a test
// controls: it can stop it and start it again under load, which the
// shared server of scripts/with-postgres.sh (TRACKERD_TEST_POSTGRES) must
// never do. The binaries are found as with-postgres.sh finds them (PATH,
// else the newest /usr/lib/postgresql/*/bin); as root the server runs as
// the unprivileged user trackerd-pg (created if missing, as the script
// does), through runuser. It listens on a Unix socket in its own
// directory under /tmp only.
//
// A missing PostgreSQL skips the test, or fails it in CI (internal/testenv).
package testpg

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/testenv"
)

const pgUser = "trackerd-pg"

// Server is a running PostgreSQL cluster of one test.
type Server struct {
	// Dir holds the data directory, the socket and the log.
	Dir string
	// DSN reaches the database "postgres" as the superuser "postgres".
	DSN string

	bindir string
	asRoot bool
	mu     sync.Mutex
	up     bool
}

// bindir finds the directory holding initdb and pg_ctl.
func bindir(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			d := filepath.Dir(r)
			if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
				return d
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	testenv.Unavailable(tb, "initdb not found (install the Debian package postgresql)")
	return ""
}

// Start initialises and starts a cluster, stopped (immediately) and
// deleted when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{bindir: bindir(tb), asRoot: os.Geteuid() == 0}
	if s.asRoot {
		if _, err := user.Lookup(pgUser); err != nil {
			out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
				"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", pgUser).CombinedOutput()
			if err != nil {
				tb.Fatalf("useradd %s: %v\n%s", pgUser, err, out)
			}
		}
		testenv.Command(tb, "runuser", "util-linux")
	}
	// Short path: the socket must fit in sun_path (107 bytes).
	dir, err := os.MkdirTemp("/tmp", "tpg")
	if err != nil {
		tb.Fatal(err)
	}
	s.Dir = dir
	tb.Cleanup(func() {
		s.Stop(tb)
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if s.asRoot {
		u, _ := user.Lookup(pgUser)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := s.command("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	s.DSN = fmt.Sprintf("host=%s dbname=postgres user=postgres sslmode=disable", dir)
	s.Start(tb)
	return s
}

// command runs a PostgreSQL program as the server's owner.
func (s *Server) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bindir, prog)
	if s.asRoot {
		return exec.Command("runuser", append([]string{"-u", pgUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// Start starts the server (again) and waits until it accepts connections.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return
	}
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c max_connections=200 "+
		"-c shared_buffers=64MB -c fsync=off -c log_min_messages=warning", s.Dir)
	if out, err := s.command("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "server.log"),
		"-w", "-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
		tb.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := exec.Command(filepath.Join(s.bindir, "pg_isready"), "-q", "-h", s.Dir, "-U", "postgres", "-d", "postgres").Run()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("PostgreSQL in %s is not ready within 30s", s.Dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.up = true
}

// Stop stops the server at once (pg_ctl -m immediate: every connection
// is cut, as when the server dies); the data stays, for Start.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return
	}
	if out, err := s.command("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "not running") {
		tb.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	s.up = false
}
