// Package corpus finds the shared mail fixture corpus (../shared/corpus
// beside the checkout) for tests. The corpus is test data kept outside the
// project; it is never copied in.
package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trackerd/trackerd/internal/testenv"
)

// Dir returns the corpus directory: $TRACKERD_CORPUS when set, else
// ../shared/corpus next to the module root. Without it the test is
// skipped, or fails when CI=true (CI must run the corpus).
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := Find()
	if err != nil {
		testenv.Unavailable(tb, "shared corpus missing (set TRACKERD_CORPUS): %v", err)
	}
	return dir
}

// Find returns the corpus directory, or an error when it is not there;
// for optional uses such as fuzz seeds.
func Find() (string, error) {
	dir := os.Getenv("TRACKERD_CORPUS")
	if dir == "" {
		dir = filepath.Join(moduleRoot(), "..", "shared", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.tsv")); err != nil {
		return "", err
	}
	return dir, nil
}

// moduleRoot is the nearest directory upward from the working directory
// that holds go.mod ("." when none).
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return "."
		}
	}
}
