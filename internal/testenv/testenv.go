// Package testenv finds the outside programs some tests drive (swaks,
// postfix's smtp-source and smtp-sink, dovecot, chromium) and applies one
// rule to them: a missing program skips the test on a developer's machine
// and fails it in CI (CI=true), where .ci/run installs everything.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// sbin are directories Debian installs daemons and their tools into, which
// a non-root PATH often lacks.
var sbin = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends a test that lacks something from outside the project
// (a program, a server, the corpus, root): it is skipped on a developer's
// machine and fails in CI, where .ci/run must provide everything. The
// message says what is missing and how to get it.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatal(msg + " (CI=true: nothing may be skipped; .ci/run must provide it)")
	}
	tb.Skip(msg)
}

// LookPath returns the path of the program name, looking in PATH and then
// in the sbin directories; "" when it is not installed.
func LookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range sbin {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Command returns the path of the program name. When it is missing, the
// test is skipped, or fails in CI; pkg names the Debian package that
// provides it, for the message.
func Command(tb testing.TB, name, pkg string) string {
	tb.Helper()
	if p := LookPath(name); p != "" {
		return p
	}
	Unavailable(tb, "%s not found (install the Debian package %s to run this test)", name, pkg)
	return ""
}

// FreePort returns a loopback address with a port nobody listens on now.
// Prefer listening on 127.0.0.1:0 in process; this is for outside daemons
// that must be told a port in their config.
func FreePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Buffer is a bytes.Buffer that a test may read while the code it tests,
// or a child process, writes to it: a log, a server's stderr.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
