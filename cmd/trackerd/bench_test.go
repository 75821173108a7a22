package main

// Benchmarks of whole processes, as operators meet them:
//
//	go test ./cmd/trackerd -run '^$' -bench . -benchtime 3x
//
// BenchmarkImportMbox files a generated, realistic 2,000-mail archive with
// `trackerd import mbox` (durable commits on SQLite) and reports mails/s;
// BenchmarkDeliver times `trackerd deliver` of one mail as a whole process
// and reports the median.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/contract"
	"github.com/trackerd/trackerd/internal/testmail"
)

// writeMbox writes mails as an mbox file (testmail.Mbox).
func writeMbox(t testing.TB, path string, mails [][]byte) int64 {
	t.Helper()
	b := testmail.Mbox(mails)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

func TestGeneratedArchiveImports(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "trackerd.toml")
	writeConfig(t, cfg, "[smtp]\nlisten = \"\"\n")
	mbox := filepath.Join(dir, "a.mbox")
	mails := testmail.Archive(300, 1)
	writeMbox(t, mbox, mails)
	out := mustRun(t, dir, "-config", cfg, "import", "mbox", mbox)
	if !strings.Contains(out, "imported 300 mails: 300 filed") {
		t.Fatalf("import of 300 generated mails: %q", out)
	}
	// Again: everything is a duplicate, nothing is filed twice.
	out = mustRun(t, dir, "-config", cfg, "import", "mbox", mbox, "-quiet")
	if !strings.Contains(out, "imported 300 mails: 0 filed, 300 ignored (300 duplicates)") {
		t.Fatalf("second import: %q", out)
	}
	var l []contract.Issue
	contract.Decode(t, mustRun(t, dir, "-config", cfg, "issue", "list", "-json"), &l)
	nosy := 0
	for _, is := range l {
		nosy += len(is.Nosy)
	}
	if len(l) < 60 || len(l) > 120 || nosy/len(l) < 3 {
		t.Errorf("generated archive: %d issues with %d nosy entries; want about 90 issues with about five each", len(l), nosy)
	}
}

func BenchmarkImportMbox(b *testing.B) {
	const n = 2000
	dir := b.TempDir()
	mbox := filepath.Join(dir, "archive.mbox")
	size := writeMbox(b, mbox, testmail.Archive(n, 7))
	// quiet: filing only (import -quiet); notify: filing, queueing the
	// notifications and sending them to the spool, as import does.
	for _, variant := range []string{"quiet", "notify"} {
		b.Run(variant, func(b *testing.B) {
			b.SetBytes(size)
			var total time.Duration
			for range b.N {
				run, err := os.MkdirTemp(dir, variant)
				if err != nil {
					b.Fatal(err)
				}
				cfg := filepath.Join(run, "trackerd.toml")
				writeConfig(b, cfg, "[smtp]\nlisten = \"\"\n")
				args := []string{"-config", cfg, "import", "mbox", mbox}
				if variant == "quiet" {
					args = append(args, "-quiet")
				}
				cmd := exec.Command(binary, args...)
				cmd.Dir = run
				start := time.Now()
				out, err := cmd.CombinedOutput()
				total += time.Since(start)
				if err != nil || !bytes.Contains(out, []byte(fmt.Sprintf("imported %d mails: %d filed", n, n))) {
					b.Fatalf("import: %v\n%s", err, out)
				}
			}
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "mails/s")
		})
	}
}

func BenchmarkDeliver(b *testing.B) {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "trackerd.toml")
	writeConfig(b, cfg, "[smtp]\nlisten = \"\"\n")
	mails := testmail.Archive(b.N+1, 11)
	// The first delivery creates the database; it is not timed.
	deliverOne := func(raw []byte) time.Duration {
		cmd := exec.Command(binary, "-config", cfg, "deliver")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(raw)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("deliver: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	deliverOne(mails[0])
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		times = append(times, deliverOne(mails[i+1]))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
}
