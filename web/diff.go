package web

import (
	"mime"
	"regexp"
	"strconv"
	"strings"
)

// Patches and diffs attached to messages are shown as readable, coloured
// unified diffs: one section per changed file, with line numbers — the
// role Rietveld played for bugs.python.org.

// maxDiffBytes is the largest patch shown inline; a bigger one is only
// linked.
const maxDiffBytes = 512 << 10

// isPatch reports whether an attachment is a patch or diff, by its name
// (.patch, .diff) or its type (text/x-diff, text/x-patch).
func isPatch(name, typ string) bool {
	n := strings.ToLower(name)
	if strings.HasSuffix(n, ".patch") || strings.HasSuffix(n, ".diff") {
		return true
	}
	mt, _, err := mime.ParseMediaType(typ)
	if err != nil {
		return false
	}
	switch mt {
	case "text/x-diff", "text/x-patch", "text/diff", "application/x-patch", "application/x-diff":
		return true
	}
	return false
}

// Diff line kinds, which are also the CSS classes of the rows.
const (
	lineMeta = "info" // headers between files: "diff --git", "index", the commit message
	lineHunk = "hunk" // "@@ -1,3 +1,4 @@"
	lineAdd  = "add"
	lineDel  = "del"
	lineCtx  = "ctx"
)

// diffLine is one line of a rendered diff. Old and New are line numbers in
// the old and new file (0: none).
type diffLine struct {
	Kind     string
	Old, New int
	Text     string
}

// diffFile is the part of a patch that changes one file.
type diffFile struct {
	Name           string
	Added, Deleted int
	Lines          []diffLine
}

// diffView is a parsed patch.
type diffView struct {
	// Preamble is what comes before the first file (a commit message).
	Preamble       []diffLine
	Files          []diffFile
	Added, Deleted int
}

var hunkRE = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@`)

// parseDiff parses a unified diff (git, diff -u, or a format-patch mail).
// ok is false when text holds no hunk at all: then it is not shown as a
// diff. Addresses in it are masked (format-patch headers carry them).
func parseDiff(text string) (v diffView, ok bool) {
	text = maskAddresses(strings.ReplaceAll(text, "\r\n", "\n"))
	var (
		cur          *diffFile
		oldN, newN   int
		oldRem, nRem int // lines left in the current hunk
	)
	add := func(l diffLine) {
		if cur == nil {
			v.Preamble = append(v.Preamble, l)
			return
		}
		cur.Lines = append(cur.Lines, l)
	}
	startFile := func(name string) {
		v.Files = append(v.Files, diffFile{Name: name})
		cur = &v.Files[len(v.Files)-1]
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		inHunk := oldRem > 0 || nRem > 0
		switch {
		case inHunk && strings.HasPrefix(l, "+"):
			add(diffLine{Kind: lineAdd, New: newN, Text: l})
			newN++
			nRem--
			cur.Added++
		case inHunk && strings.HasPrefix(l, "-"):
			add(diffLine{Kind: lineDel, Old: oldN, Text: l})
			oldN++
			oldRem--
			cur.Deleted++
		case inHunk && (strings.HasPrefix(l, " ") || l == ""):
			add(diffLine{Kind: lineCtx, Old: oldN, New: newN, Text: l})
			oldN++
			newN++
			oldRem--
			nRem--
		case strings.HasPrefix(l, `\`): // "\ No newline at end of file"
			add(diffLine{Kind: lineMeta, Text: l})
		case strings.HasPrefix(l, "diff "):
			startFile(diffName(l))
			add(diffLine{Kind: lineMeta, Text: l})
		case strings.HasPrefix(l, "--- ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "+++ "):
			// A file without a "diff" line (diff -u), or the old name
			// after one.
			if cur == nil || len(cur.Lines) > 0 && cur.hasHunk() {
				startFile(fileName(lines[i+1][4:]))
			}
			add(diffLine{Kind: lineMeta, Text: l})
		case strings.HasPrefix(l, "+++ ") && cur != nil:
			if n := fileName(l[4:]); n != "/dev/null" {
				cur.Name = n
			}
			add(diffLine{Kind: lineMeta, Text: l})
		case cur != nil && hunkRE.MatchString(l):
			m := hunkRE.FindStringSubmatch(l)
			oldN, _ = strconv.Atoi(m[1])
			newN, _ = strconv.Atoi(m[3])
			oldRem, nRem = hunkLen(m[2]), hunkLen(m[4])
			add(diffLine{Kind: lineHunk, Text: l})
			ok = true
		default:
			add(diffLine{Kind: lineMeta, Text: l})
		}
	}
	for _, f := range v.Files {
		v.Added += f.Added
		v.Deleted += f.Deleted
	}
	return v, ok
}

func (f *diffFile) hasHunk() bool {
	for _, l := range f.Lines {
		if l.Kind == lineHunk {
			return true
		}
	}
	return false
}

// hunkLen is a hunk header's line count: absent means 1.
func hunkLen(s string) int {
	if s == "" {
		return 1
	}
	n, _ := strconv.Atoi(s)
	return n
}

// diffName is the file a "diff --git a/x b/y" line names: y.
func diffName(l string) string {
	f := strings.Fields(l)
	if len(f) == 0 {
		return ""
	}
	return fileName(f[len(f)-1])
}

// fileName strips a "+++ " line's timestamp and the a/ b/ prefixes.
func fileName(s string) string {
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "a/") || strings.HasPrefix(s, "b/") {
		s = s[2:]
	}
	return s
}
