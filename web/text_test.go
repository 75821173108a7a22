package web

import (
	"reflect"
	"testing"

	"github.com/trackerd/trackerd/store"
)

func TestMaskAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mail alice@example.org now", "mail alice@… now"},
		{"<Bob.Smith+tag@mail.example.co.uk>", "<Bob.Smith+tag@…>"},
		{"root@localhost", "root@…"},
		{"jörg@bücher.example", "jörg@…"},
		{"npm i left-pad@1.3.0", "npm i left-pad@1.3.0"}, // a version, not an address
		{"@channel and user@ alone", "@channel and user@ alone"},
		{"a@b.c, d@e.f", "a@…, d@…"},
		{"no at sign", "no at sign"},
	} {
		if got := maskAddresses(tc.in); got != tc.want {
			t.Errorf("maskAddresses(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct {
		u    store.User
		want string
	}{
		{store.User{RealName: "Alice Liddell", Address: "alice@example.org"}, "Alice Liddell"},
		{store.User{RealName: "  ", Address: "alice@example.org"}, "alice@…"},
		{store.User{RealName: "carol@example.com", Address: "carol@example.com"}, "carol@…"},
		{store.User{RealName: "Dan (dan@example.com)", Address: "dan@example.com"}, "Dan (dan@…)"},
	} {
		if got := displayName(&tc.u); got != tc.want {
			t.Errorf("displayName(%+v) = %q, want %q", tc.u, got, tc.want)
		}
	}
	if got := displayName(nil); got != "unknown" {
		t.Errorf("displayName(nil) = %q", got)
	}
}

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []segment
	}{
		{"see https://example.org/a?b=1.", []segment{{Text: "see "}, {Text: "https://example.org/a?b=1", URL: "https://example.org/a?b=1"}, {Text: "."}}},
		{"(http://x.org/y) and issue12", []segment{{Text: "("}, {Text: "http://x.org/y", URL: "http://x.org/y"}, {Text: ") and "}, {Text: "issue12", URL: "/issue/12"}}},
		{"javascript:alert(1) tissue12 issue0", []segment{{Text: "javascript:alert(1) tissue12 issue0"}}},
		{"https:// alone", []segment{{Text: "https:// alone"}}},
		{"", nil},
	} {
		if got := segments(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("segments(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestTextBlocks(t *testing.T) {
	text := "Thanks.\r\n\r\nOn Mon, Bob <bob@example.org> wrote:\n> first\n>> second\nMy answer.\n  > indented quote\n"
	got := textBlocks(text)
	var kinds []bool
	var counts []int
	for _, b := range got {
		kinds = append(kinds, b.Quote)
		counts = append(counts, b.LineCount())
	}
	if !reflect.DeepEqual(kinds, []bool{false, true, false, true}) || !reflect.DeepEqual(counts, []int{1, 3, 1, 1}) {
		t.Fatalf("textBlocks: quote flags %v, line counts %v", kinds, counts)
	}
	if att := got[1].Lines[0][0].Text; att != "On Mon, Bob <bob@…> wrote:" {
		t.Errorf("attribution line = %q: not folded or not masked", att)
	}
	// A colon that introduces no quote stays text.
	got = textBlocks("Steps to reproduce:\n> ls\n")
	if len(got) != 2 || got[0].Quote || !got[1].Quote {
		t.Errorf("textBlocks folded a non-attribution line: %+v", got)
	}
	if textBlocks(" \n\n") != nil {
		t.Errorf("textBlocks of blank text is not empty")
	}
}

func TestParseDiff(t *testing.T) {
	v, ok := parseDiff(testPatch)
	if !ok {
		t.Fatal("parseDiff: the test patch is not a diff")
	}
	if len(v.Files) != 1 || v.Files[0].Name != "printer.c" || v.Added != 2 || v.Deleted != 1 {
		t.Fatalf("parseDiff: files %+v, +%d -%d", v.Files, v.Added, v.Deleted)
	}
	if len(v.Preamble) == 0 || v.Preamble[1].Text != "From: Bob Builder <bob@…>" {
		t.Errorf("preamble = %+v: the commit header is missing or shows the address", v.Preamble)
	}
	last := v.Files[0].Lines[len(v.Files[0].Lines)-1]
	if last.Kind != lineMeta || last.Text != "2.40.0" {
		t.Errorf("the signature after the last hunk is %+v, want meta", last)
	}

	// diff -u of two files without "diff" lines, a deleted line that
	// starts with "--", and a hunk without counts.
	plain := "--- a.txt\t2026-01-01\n+++ a.txt\t2026-01-02\n@@ -1,2 +1,2 @@\n--- old rule\n+new rule\n same\n--- b.txt\n+++ b.txt\n@@ -5 +5 @@\n-x\n+y\n"
	v, ok = parseDiff(plain)
	if !ok || len(v.Files) != 2 || v.Files[0].Name != "a.txt" || v.Files[1].Name != "b.txt" {
		t.Fatalf("parseDiff(plain) = %+v, %v", v.Files, ok)
	}
	if l := v.Files[0].Lines[3]; l.Kind != lineDel || l.Old != 1 || l.Text != "--- old rule" {
		t.Errorf("a deleted line starting with --- = %+v", l)
	}
	if l := v.Files[1].Lines[4]; l.Kind != lineAdd || l.New != 5 {
		t.Errorf("b.txt's added line = %+v", l)
	}
	if _, ok := parseDiff("just some text\nwith --- dashes\n"); ok {
		t.Errorf("parseDiff accepted text without a hunk")
	}
}

func TestIsPatch(t *testing.T) {
	for _, tc := range []struct {
		name, typ string
		want      bool
	}{
		{"fix.patch", "application/octet-stream", true},
		{"FIX.DIFF", "", true},
		{"changes", "text/x-diff; charset=utf-8", true},
		{"changes", "text/x-patch", true},
		{"notes.txt", "text/plain", false},
		{"patch.png", "image/png", false},
	} {
		if got := isPatch(tc.name, tc.typ); got != tc.want {
			t.Errorf("isPatch(%q, %q) = %v", tc.name, tc.typ, got)
		}
	}
}
