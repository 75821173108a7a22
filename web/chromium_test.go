package web

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/store"
)

// chromium runs headless Chromium (Debian's package) with a fresh profile
// and the given arguments, and returns its standard output.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	profile := t.TempDir()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-quic", "--disable-extensions", "--disable-default-apps",
		"--mute-audio", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// TestChromium loads the index and an issue whose subject and body carry
// script and event-handler payloads in a real browser, checks from the
// DOM the browser built that nothing was injected and nothing ran, and
// takes screenshots at a phone's width (375 px) into the test's directory
// or $TRACKERD_SCREENSHOT_DIR.
func TestChromium(t *testing.T) {
	bin := testenv.Command(t, "chromium", "chromium")
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		sc := newScenario(t, st, nil)
		shots := os.Getenv("TRACKERD_SCREENSHOT_DIR")
		if shots == "" {
			shots = t.TempDir()
		}
		driver := st.Driver()
		for _, p := range []struct{ name, path, title string }{
			{"index", "/", "Issues"},
			{"issue", fmt.Sprintf("/issue/%d", sc.printer), xssTitle},
		} {
			dom := chromium(t, bin, "--virtual-time-budget=2000", "--dump-dom", sc.url+p.path)
			doc := parseHTML(t, dom)
			assertNoInjection(t, "chromium "+p.name, doc)
			titles := findAll(doc, func(n *html.Node) bool { return n.Data == "title" })
			if len(titles) != 1 || textOf(titles[0]) != p.title+" · Test Tracker" {
				t.Errorf("chromium %s: document title changed or missing: %q", p.name, textOf(titles[0]))
			}
			bodies := findAll(doc, func(n *html.Node) bool { return n.Data == "body" })
			if len(bodies) != 1 || len(bodies[0].Attr) != 0 {
				t.Errorf("chromium %s: <body> carries attributes a script set: %v", p.name, bodies[0].Attr)
			}
			// The payloads are there, as text.
			if !strings.Contains(textOf(doc), "<script>document.body.setAttribute('data-pwned','1')</script>") {
				t.Errorf("chromium %s: the subject's markup is not shown as text", p.name)
			}
			if p.name == "issue" && !strings.Contains(textOf(doc), `<img src=x onerror=alert(1)>`) {
				t.Errorf("chromium issue: the body's markup is not shown as text")
			}
			assertNoAddress(t, "chromium "+p.name, dom)

			file := filepath.Join(shots, fmt.Sprintf("%s-%s-375.png", p.name, driver))
			chromium(t, bin, "--hide-scrollbars", "--window-size=375,800", "--screenshot="+file, sc.url+p.path)
			if os.Getenv("TRACKERD_SCREENSHOT_TALL") != "" {
				chromium(t, bin, "--hide-scrollbars", "--window-size=375,2600", "--screenshot="+strings.TrimSuffix(file, ".png")+"-tall.png", sc.url+p.path)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("screenshot %s: %v", file, err)
			}
			b := img.Bounds()
			if b.Dx() != 375 || b.Dy() != 800 {
				t.Errorf("screenshot %s is %dx%d, want 375x800", file, b.Dx(), b.Dy())
			}
			colors := map[uint32]bool{}
			for y := b.Min.Y; y < b.Max.Y; y += 4 {
				for x := b.Min.X; x < b.Max.X; x += 4 {
					r, g, bl, _ := img.At(x, y).RGBA()
					colors[r>>8<<16|g>>8<<8|bl>>8] = true
				}
			}
			if len(colors) < 8 {
				t.Errorf("screenshot %s has %d colours: the page did not render", file, len(colors))
			}
			t.Logf("screenshot: %s", file)
		}
	})
}
