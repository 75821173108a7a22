package mailgw

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// subjectCase is one row of TestParseSubject. Modes default to strict.
// When want has no Designator, TitleWithDesignator defaults to Title; when
// it has no Suffix, TitleWithSuffix defaults to Title.
type subjectCase struct {
	name     string
	in       string
	pfx, sfx string
	want     Subject
	wantErr  string // substring of the error; "" for none
}

func TestParseSubject(t *testing.T) {
	resolved := []PropChange{{Name: "status", Value: "resolved"}}
	cases := []subjectCase{
		// Plain titles and every prefix form.
		{name: "empty", in: "", want: Subject{}},
		{name: "blank", in: " \t ", want: Subject{}},
		{name: "plain", in: "Printer on fire", want: Subject{Title: "Printer on fire"}},
		{name: "Re", in: "Re: Printer on fire", want: Subject{Title: "Printer on fire"}},
		{name: "RE upper", in: "RE: Printer", want: Subject{Title: "Printer"}},
		{name: "re lower", in: "re: printer", want: Subject{Title: "printer"}},
		{name: "Fwd", in: "Fwd: Printer", want: Subject{Title: "Printer"}},
		{name: "FW", in: "FW: Printer", want: Subject{Title: "Printer"}},
		{name: "Fw", in: "Fw: Printer", want: Subject{Title: "Printer"}},
		{name: "Aw German", in: "Aw: Drucker", want: Subject{Title: "Drucker"}},
		{name: "SV Scandinavian", in: "SV: Skrivare", want: Subject{Title: "Skrivare"}},
		{name: "Ang Swedish", in: "Ang: Skrivare", want: Subject{Title: "Skrivare"}},
		{name: "TR French", in: "TR: Imprimante", want: Subject{Title: "Imprimante"}},
		{name: "Re counter brackets", in: "Re[2]: Printer", want: Subject{Title: "Printer"}},
		{name: "Re counter parens", in: "Re(3): Printer", want: Subject{Title: "Printer"}},
		{name: "Re counter caret", in: "Re^2: Printer", want: Subject{Title: "Printer"}},
		{name: "space before colon", in: "RE : Imprimante", want: Subject{Title: "Imprimante"}},
		{name: "repeated mixed", in: "Re: Fwd: RE: AW: Printer", want: Subject{Title: "Printer"}},
		{name: "no space after colon", in: "Re:Fwd:Printer", want: Subject{Title: "Printer"}},
		{name: "fullwidth colon", in: "Re：打印机坏了", want: Subject{Title: "打印机坏了"}},
		{name: "prefix word without colon is title", in: "Re organise files", want: Subject{Title: "Re organise files"}},
		{name: "longer word is title", in: "Reply: soon", want: Subject{Title: "Reply: soon"}},
		{name: "Tre is title", in: "Tre: three", want: Subject{Title: "Tre: three"}},
		{name: "only prefixes", in: "Re: Re: Fwd:", want: Subject{}},
		{name: "whitespace collapsed", in: "  Re:   lots   of\t space\r\n folded  ", want: Subject{Title: "lots of space folded"}},
		{name: "control characters", in: "foo\x00bar\x1b", want: Subject{Title: "foo bar"}},

		// Designators.
		{name: "designator first", in: "[issue12] Crash on save", want: Subject{
			Title: "Crash on save", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12] Crash on save"}},
		{name: "designator after Re", in: "Re: [issue12] Crash", want: Subject{
			Title: "Crash", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12] Crash"}},
		{name: "designator case and spaces", in: "RE: [ Issue 123 ] Crash", want: Subject{
			Title: "Crash", IssueID: 123, Designator: "[ Issue 123 ]", TitleWithDesignator: "[ Issue 123 ] Crash"}},
		{name: "designator upper", in: "[ISSUE7] x", want: Subject{
			Title: "x", IssueID: 7, Designator: "[ISSUE7]", TitleWithDesignator: "[ISSUE7] x"}},
		{name: "designator leading zeros", in: "[issue007] x", want: Subject{
			Title: "x", IssueID: 7, Designator: "[issue007]", TitleWithDesignator: "[issue007] x"}},
		{name: "list tag before designator", in: "[python-dev] [issue12] crash", want: Subject{
			Title: "crash", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[python-dev] [issue12] crash"}},
		{name: "list tag and Re before designator", in: "Re: [python-dev] Re: [issue12] crash", want: Subject{
			Title: "crash", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[python-dev] Re: [issue12] crash"}},
		{name: "designator last", in: "Crash in parser [issue12]", want: Subject{
			Title: "Crash in parser", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "Crash in parser [issue12]"}},
		{name: "designator in the middle", in: "Problem in [issue12] parser", want: Subject{
			Title: "Problem in parser", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "Problem in [issue12] parser"}},
		{name: "designator alone", in: "Re: [issue12]", want: Subject{
			Title: "", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12]"}},
		{name: "new issue", in: "[issue] New thing", want: Subject{
			Title: "New thing", NewIssue: true, Designator: "[issue]", TitleWithDesignator: "[issue] New thing"}},
		{name: "new issue spaced", in: "[ Issue ] New thing", want: Subject{
			Title: "New thing", NewIssue: true, Designator: "[ Issue ]", TitleWithDesignator: "[ Issue ] New thing"}},
		{name: "first designator wins", in: "[issue12] dup of [issue13]", want: Subject{
			Title: "dup of [issue13]", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12] dup of [issue13]"}},
		{name: "issue zero strict", in: "[issue0] x", wantErr: "issue numbers start at 1",
			want: Subject{Title: "[issue0] x"}},
		{name: "issue zero loose", in: "[issue0] x", pfx: SubjectLoose, want: Subject{Title: "[issue0] x"}},
		{name: "issue overflow strict", in: "[issue99999999999999999999] x", wantErr: "names no issue",
			want: Subject{Title: "[issue99999999999999999999] x"}},
		{name: "not a designator: issues", in: "[issues] are bad", want: Subject{Title: "[issues] are bad"}},
		{name: "not a designator: dash", in: "[issue-12] x", want: Subject{Title: "[issue-12] x"}},
		{name: "not a designator: other class", in: "[msg12] x", want: Subject{Title: "[msg12] x"}},
		{name: "nested bracket", in: "[[issue5]] x", want: Subject{
			Title: "[ ] x", IssueID: 5, Designator: "[issue5]", TitleWithDesignator: "[[issue5]] x"}},

		// Brackets that are title text.
		{name: "list tag without designator", in: "[python-dev] Segfault", want: Subject{Title: "[python-dev] Segfault"}},
		{name: "corpus: list tags", in: "[notmuch] [PATCH] Error out if no query is supplied", want: Subject{Title: "[notmuch] [PATCH] Error out if no query is supplied"}},
		{name: "corpus: RT tag", in: "[support.example.de #33575] Resolved: FYI", want: Subject{Title: "[support.example.de #33575] Resolved: FYI"}},
		{name: "corpus: bracket colon", in: "[0]: XXXXXXX XXXXX !", want: Subject{Title: "[0]: XXXXXXX XXXXX !"}},
		{name: "corpus: Fwd bracket", in: "[Fwd: Netscape Enterprise vs. Apache Secure]", want: Subject{Title: "[Fwd: Netscape Enterprise vs. Apache Secure]"}},
		{name: "Fwd of Fwd bracket", in: "Fwd: [Fwd: something]", want: Subject{Title: "[Fwd: something]"}},
		{name: "trailing Fwd bracket after designator", in: "[issue12] x [Fwd: y]", want: Subject{
			Title: "x [Fwd: y]", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12] x [Fwd: y]"}},
		{name: "equals bracket not last", in: "Crash with [CFLAGS=-O2] on arm", want: Subject{Title: "Crash with [CFLAGS=-O2] on arm"}},
		{name: "equals bracket then text", in: "[issue12] x [status=resolved] trailing", want: Subject{
			Title: "x [status=resolved] trailing", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12] x [status=resolved] trailing"}},

		// Suffixes.
		{name: "suffix", in: "[issue12] x [status=resolved]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]", Props: resolved, Suffix: "[status=resolved]",
			TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [status=resolved]"}},
		{name: "suffix trailing space", in: "Re: [issue12] x [status=resolved]  ", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]", Props: resolved, Suffix: "[status=resolved]",
			TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [status=resolved]"}},
		{name: "suffix with spaces", in: "[issue12] x [ status = resolved ; priority = urgent ]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "status", Value: "resolved"}, {Name: "priority", Value: "urgent"}},
			Suffix: "[ status = resolved ; priority = urgent ]", TitleWithDesignator: "[issue12] x",
			TitleWithSuffix: "x [ status = resolved ; priority = urgent ]"}},
		{name: "suffix names lowercased, values kept", in: "[issue12] x [Status=Resolved]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]", Props: []PropChange{{Name: "status", Value: "Resolved"}},
			Suffix: "[Status=Resolved]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [Status=Resolved]"}},
		{name: "suffix trailing semicolon", in: "[issue12] x [status=resolved;]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]", Props: resolved, Suffix: "[status=resolved;]",
			TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [status=resolved;]"}},
		{name: "nosy add and remove", in: "[issue12] x [nosy=+bob@x.org,-carol@y.org]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "nosy", Value: "+bob@x.org,-carol@y.org", Add: []string{"bob@x.org"}, Remove: []string{"carol@y.org"}}},
			Suffix: "[nosy=+bob@x.org,-carol@y.org]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [nosy=+bob@x.org,-carol@y.org]"}},
		{name: "keyword full list", in: "[issue12] x [keyword=a, b]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "keyword", Value: "a, b", Set: []string{"a", "b"}}},
			Suffix: "[keyword=a, b]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [keyword=a, b]"}},
		{name: "keyword mixed: unsigned items are added", in: "[issue12] x [keyword=a, + b,-c]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "keyword", Value: "a, + b,-c", Add: []string{"a", "b"}, Remove: []string{"c"}}},
			Suffix: "[keyword=a, + b,-c]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [keyword=a, + b,-c]"}},
		{name: "keyword cleared", in: "[issue12] x [keyword=]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "keyword", Set: []string{}}},
			Suffix: "[keyword=]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [keyword=]"}},
		{name: "assignee cleared", in: "[issue12] x [assignedto=]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "assignedto"}},
			Suffix: "[assignedto=]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [assignedto=]"}},
		{name: "same name twice kept in order", in: "[issue12] x [nosy=a;nosy=+b]", want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]",
			Props:  []PropChange{{Name: "nosy", Value: "a", Set: []string{"a"}}, {Name: "nosy", Value: "+b", Add: []string{"b"}}},
			Suffix: "[nosy=a;nosy=+b]", TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [nosy=a;nosy=+b]"}},
		{name: "title, superseder and unknown names", in: "[issue] New [title=Better title; superseder=13; colour=red]", want: Subject{
			Title: "New", NewIssue: true, Designator: "[issue]",
			Props: []PropChange{{Name: "title", Value: "Better title"}, {Name: "superseder", Value: "13"},
				{Name: "colour", Value: "red"}},
			Suffix: "[title=Better title; superseder=13; colour=red]", TitleWithDesignator: "[issue] New",
			TitleWithSuffix: "New [title=Better title; superseder=13; colour=red]"}},
		{name: "suffix without designator", in: "Printer on fire [priority=urgent]", want: Subject{
			Title: "Printer on fire", Props: []PropChange{{Name: "priority", Value: "urgent"}}, Suffix: "[priority=urgent]",
			TitleWithSuffix: "Printer on fire [priority=urgent]"}},
		{name: "suffix alone", in: "[status=resolved]", want: Subject{
			Props: resolved, Suffix: "[status=resolved]", TitleWithSuffix: "[status=resolved]"}},
		{name: "suffix before a last designator", in: "Fix it [status=resolved] [issue12]", want: Subject{
			Title: "Fix it", IssueID: 12, Designator: "[issue12]", Props: resolved, Suffix: "[status=resolved]",
			TitleWithDesignator: "Fix it [issue12]", TitleWithSuffix: "Fix it [status=resolved]"}},
		{name: "list tag then suffix", in: "[issue12] [a] [b=c]", want: Subject{
			Title: "[a]", IssueID: 12, Designator: "[issue12]", Props: []PropChange{{Name: "b", Value: "c"}}, Suffix: "[b=c]",
			TitleWithDesignator: "[issue12] [a]", TitleWithSuffix: "[a] [b=c]"}},
		{name: "only the last bracket is a suffix", in: "[issue12] x [a=b] [c=d]", want: Subject{
			Title: "x [a=b]", IssueID: 12, Designator: "[issue12]", Props: []PropChange{{Name: "c", Value: "d"}}, Suffix: "[c=d]",
			TitleWithDesignator: "[issue12] x [a=b]", TitleWithSuffix: "x [a=b] [c=d]"}},

		// Malformed suffixes, in each mode.
		{name: "malformed suffix strict", in: "[issue12] x [status=resolved; urgent]", wantErr: `"urgent" is not of the form name=value`,
			want: Subject{Title: "x [status=resolved; urgent]", IssueID: 12, Designator: "[issue12]",
				TitleWithDesignator: "[issue12] x [status=resolved; urgent]"}},
		{name: "malformed suffix loose", in: "[issue12] x [status=resolved; urgent]", sfx: SubjectLoose,
			want: Subject{Title: "x [status=resolved; urgent]", IssueID: 12, Designator: "[issue12]",
				TitleWithDesignator: "[issue12] x [status=resolved; urgent]"}},
		{name: "malformed suffix none", in: "[issue12] x [status=resolved; urgent]", sfx: SubjectNone,
			want: Subject{Title: "x [status=resolved; urgent]", IssueID: 12, Designator: "[issue12]",
				TitleWithDesignator: "[issue12] x [status=resolved; urgent]"}},
		{name: "empty name", in: "x [=resolved]", wantErr: "no property name", want: Subject{Title: "x [=resolved]"}},
		{name: "two equals", in: "x [status=resolved priority=urgent]", wantErr: "more than one '='",
			want: Subject{Title: "x [status=resolved priority=urgent]"}},
		{name: "name with space", in: "Segfault [see x=1]", wantErr: `"see x" is not a property name`,
			want: Subject{Title: "Segfault [see x=1]"}},
		{name: "lone sign", in: "x [nosy=+]", wantErr: "lacks a name", want: Subject{Title: "x [nosy=+]"}},
		{name: "both bad", in: "[issue0] x [=y]", wantErr: "; ", want: Subject{Title: "[issue0] x [=y]"}},

		// Quotes.
		{name: "quoted after Re", in: `Re: "[issue3] foo"`, want: Subject{
			Title: "foo", IssueID: 3, Designator: "[issue3]", TitleWithDesignator: "[issue3] foo"}},
		{name: "quoted with inner quotes", in: `Re: "[issue3] the "foo" bug"`, want: Subject{
			Title: `the "foo" bug`, IssueID: 3, Designator: "[issue3]", TitleWithDesignator: `[issue3] the "foo" bug`}},
		{name: "quoted suffix", in: `Re: "[issue3] foo [status=resolved]"`, want: Subject{
			Title: "foo", IssueID: 3, Designator: "[issue3]", Props: resolved, Suffix: "[status=resolved]",
			TitleWithDesignator: "[issue3] foo", TitleWithSuffix: "foo [status=resolved]"}},
		{name: "curly quotes", in: "Re: “[issue3] foo”", want: Subject{
			Title: "foo", IssueID: 3, Designator: "[issue3]", TitleWithDesignator: "[issue3] foo"}},
		{name: "unclosed quote before designator", in: `Re: "[issue3] foo`, want: Subject{
			Title: "foo", IssueID: 3, Designator: "[issue3]", TitleWithDesignator: `"[issue3] foo`}},
		{name: "two quoted words after Re", in: `Re: "foo" and "bar"`, want: Subject{Title: `"foo" and "bar"`}},
		{name: "quoted title without prefix", in: `"Quoted" is broken`, want: Subject{Title: `"Quoted" is broken`}},
		{name: "quotes around prefix", in: `Re: "Fwd: [issue4] x"`, want: Subject{
			Title: "x", IssueID: 4, Designator: "[issue4]", TitleWithDesignator: "[issue4] x"}},

		// Unicode.
		{name: "cyrillic and japanese", in: "Re: [issue5] Ошибка при сохранении — 保存できない", want: Subject{
			Title: "Ошибка при сохранении — 保存できない", IssueID: 5, Designator: "[issue5]",
			TitleWithDesignator: "[issue5] Ошибка при сохранении — 保存できない"}},
		{name: "umlauts", in: "AW: Störung im Betrieb", want: Subject{Title: "Störung im Betrieb"}},
		{name: "no-break spaces", in: "Re:\u00a0Größe\u00a0\u00a0falsch", want: Subject{Title: "Größe falsch"}},
		{name: "unicode property value", in: "[issue5] x [keyword=café,+naïve]", want: Subject{
			Title: "x", IssueID: 5, Designator: "[issue5]",
			Props:  []PropChange{{Name: "keyword", Value: "café,+naïve", Add: []string{"café", "naïve"}}},
			Suffix: "[keyword=café,+naïve]", TitleWithDesignator: "[issue5] x", TitleWithSuffix: "x [keyword=café,+naïve]"}},

		// Modes.
		{name: "prefix none keeps designator", in: "Re: [issue12] Crash", pfx: SubjectNone, want: Subject{Title: "[issue12] Crash"}},
		{name: "prefix none keeps new-issue bracket", in: "[issue] Crash", pfx: SubjectNone, want: Subject{Title: "[issue] Crash"}},
		{name: "prefix none, suffix strict", in: "[issue12] x [status=resolved]", pfx: SubjectNone, want: Subject{
			Title: "[issue12] x", Props: resolved, Suffix: "[status=resolved]", TitleWithSuffix: "[issue12] x [status=resolved]"}},
		{name: "prefix loose, valid", in: "[python-dev] [issue12] crash", pfx: SubjectLoose, want: Subject{
			Title: "crash", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[python-dev] [issue12] crash"}},
		{name: "suffix none", in: "[issue12] x [status=resolved]", sfx: SubjectNone, want: Subject{
			Title: "x [status=resolved]", IssueID: 12, Designator: "[issue12]", TitleWithDesignator: "[issue12] x [status=resolved]"}},
		{name: "suffix loose, valid", in: "[issue12] x [status=resolved]", sfx: SubjectLoose, want: Subject{
			Title: "x", IssueID: 12, Designator: "[issue12]", Props: resolved, Suffix: "[status=resolved]",
			TitleWithDesignator: "[issue12] x", TitleWithSuffix: "x [status=resolved]"}},
		{name: "both none", in: "Re: [issue12] x [status=resolved]", pfx: SubjectNone, sfx: SubjectNone,
			want: Subject{Title: "[issue12] x [status=resolved]"}},
		{name: "unknown mode is strict", in: "[issue0] x", pfx: "bogus", wantErr: "names no issue", want: Subject{Title: "[issue0] x"}},
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			pfx, sfx := tc.pfx, tc.sfx
			if pfx == "" {
				pfx = SubjectStrict
			}
			if sfx == "" {
				sfx = SubjectStrict
			}
			want := tc.want
			if want.Designator == "" && want.TitleWithDesignator == "" {
				want.TitleWithDesignator = want.Title
			}
			if want.Suffix == "" && want.TitleWithSuffix == "" {
				want.TitleWithSuffix = want.Title
			}
			got, err := ParseSubject(tc.in, pfx, sfx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("ParseSubject(%q, %q, %q) error: %v", tc.in, pfx, sfx, err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("ParseSubject(%q, %q, %q) = nil error, want one containing %q", tc.in, pfx, sfx, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("ParseSubject(%q, %q, %q) error %q, want it to contain %q", tc.in, pfx, sfx, err, tc.wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseSubject(%q, %q, %q) mismatch (-want +got):\n%s", tc.in, pfx, sfx, diff)
			}
			checkSubjectInvariants(t, tc.in, pfx, sfx, got, err)
		})
	}
	if len(cases) < 40 {
		t.Errorf("only %d cases", len(cases))
	}
}

func TestPropChangeString(t *testing.T) {
	cases := []struct {
		pc   PropChange
		want string
	}{
		{PropChange{Name: "status", Value: "resolved"}, "status=resolved"},
		{PropChange{Name: "assignedto"}, "assignedto="},
		{PropChange{Name: "keyword", Value: "a, b", Set: []string{"a", "b"}}, "keyword=a,b"},
		{PropChange{Name: "keyword", Set: []string{}}, "keyword="},
		{PropChange{Name: "nosy", Add: []string{"bob@x.org"}, Remove: []string{"carol@y.org"}}, "nosy=+bob@x.org,-carol@y.org"},
		{PropChange{Name: "nosy", Remove: []string{"carol@y.org"}}, "nosy=-carol@y.org"},
	}
	for _, tc := range cases {
		if got := tc.pc.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.pc, got, tc.want)
		}
	}
}

// checkSubjectInvariants checks what holds for every subject; the fuzz
// target and the table share it.
func checkSubjectInvariants(t *testing.T, in, pfx, sfx string, got Subject, err error) {
	t.Helper()
	call := func() string { return fmt.Sprintf("ParseSubject(%q, %q, %q)", in, pfx, sfx) }
	valid := utf8.ValidString(in)
	for _, title := range []string{got.Title, got.TitleWithDesignator, got.TitleWithSuffix} {
		if valid && !utf8.ValidString(title) {
			t.Errorf("%s: title %q is not valid UTF-8", call(), title)
		}
		if title != strings.TrimSpace(title) || strings.Contains(title, "  ") {
			t.Errorf("%s: title %q is not collapsed", call(), title)
		}
		if strings.ContainsFunc(title, func(r rune) bool { return unicode.IsControl(r) || (r != ' ' && unicode.IsSpace(r)) }) {
			t.Errorf("%s: title %q has control or odd space characters", call(), title)
		}
	}
	if !strings.Contains(in, got.Designator) || !strings.Contains(in, got.Suffix) {
		t.Errorf("%s: designator %q or suffix %q not in the subject", call(), got.Designator, got.Suffix)
	}
	if (got.Designator != "") != (got.IssueID > 0 || got.NewIssue) || (got.IssueID > 0 && got.NewIssue) {
		t.Errorf("%s: designator %q, IssueID %d, NewIssue %v disagree", call(), got.Designator, got.IssueID, got.NewIssue)
	}
	if (got.Suffix != "") != (len(got.Props) > 0) {
		t.Errorf("%s: suffix %q but %d props", call(), got.Suffix, len(got.Props))
	}
	if got.Designator == "" && got.TitleWithDesignator != got.Title {
		t.Errorf("%s: no designator but TitleWithDesignator %q != Title %q", call(), got.TitleWithDesignator, got.Title)
	}
	if got.Suffix == "" && got.TitleWithSuffix != got.Title {
		t.Errorf("%s: no suffix but TitleWithSuffix %q != Title %q", call(), got.TitleWithSuffix, got.Title)
	}
	if pfx == SubjectNone && got.Designator != "" || sfx == SubjectNone && got.Suffix != "" {
		t.Errorf("%s: mode none but designator %q / suffix %q", call(), got.Designator, got.Suffix)
	}
	if err != nil && pfx == SubjectLoose && sfx == SubjectLoose {
		t.Errorf("%s: loose mode returned error %v", call(), err)
	}
	// Strict fails or gives the loose result; on failure it gives the
	// loose result too.
	loosePfx, looseSfx := pfx, sfx
	if loosePfx != SubjectNone {
		loosePfx = SubjectLoose
	}
	if looseSfx != SubjectNone {
		looseSfx = SubjectLoose
	}
	if loose, lerr := ParseSubject(in, loosePfx, looseSfx); lerr != nil {
		t.Errorf("%s: loose parse error %v", call(), lerr)
	} else if !reflect.DeepEqual(loose, got) {
		t.Errorf("%s differs from the loose parse (-loose +got):\n%s", call(), cmp.Diff(loose, got))
	}
	// A title without designator is a fixed point of the grammar.
	if got.Designator == "" {
		again, _ := ParseSubject(got.Title, SubjectNone, SubjectNone)
		if again.Title != got.Title {
			t.Errorf("%s: Title %q parses again to %q", call(), got.Title, again.Title)
		}
	}
	// Each change written back in the grammar parses to itself.
	for _, pc := range got.Props {
		re, rerr := ParseSubject("["+pc.String()+"]", SubjectStrict, SubjectStrict)
		if rerr != nil || len(re.Props) != 1 {
			t.Errorf("%s: prop %q does not parse back: %v, %v", call(), pc.String(), re.Props, rerr)
			continue
		}
		back, orig := re.Props[0], pc
		if orig.IsMulti() {
			back.Value, orig.Value = "", ""
		}
		if diff := cmp.Diff(orig, back); diff != "" {
			t.Errorf("%s: prop %q parses back different (-orig +back):\n%s", call(), pc.String(), diff)
		}
	}
}

func FuzzSubject(f *testing.F) {
	for _, s := range []string{
		"", "Re: [issue12] Crash [status=resolved]", "[python-dev] Re: [issue12] crash",
		`Re: "[issue3] the "foo" bug"`, "[issue] New [nosy=+bob@x.org,-carol@y.org;keyword=a,b]",
		"Re[2]: Fwd: [Fwd: x]", "x [status=resolved; urgent]", "[issue0] x [=y]", "Re：打印机坏了",
		"Fix it [status=resolved] [issue12]", "[[issue5]] x", "Re: “[issue3] foo”", "[keyword=]",
	} {
		for m := range uint8(9) {
			f.Add(s, m)
		}
	}
	modes := [3]string{SubjectStrict, SubjectLoose, SubjectNone}
	f.Fuzz(func(t *testing.T, subject string, m uint8) {
		pfx, sfx := modes[m%3], modes[m/3%3]
		got, err := ParseSubject(subject, pfx, sfx)
		checkSubjectInvariants(t, subject, pfx, sfx, got, err)
	})
}

// TestSubjectCommandsCorpus runs the subject grammar and the body commands
// over every mail of the shared corpus (as Parse decodes them), in every
// mode, checking the same invariants as the fuzz targets.
func TestSubjectCommandsCorpus(t *testing.T) {
	const dir = "../../shared/corpus"
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".eml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus at %s: %d files, %v", dir, len(files), err)
		}
		t.Skipf("corpus at %s: %d files, %v", dir, len(files), err)
	}
	modes := []string{SubjectStrict, SubjectLoose, SubjectNone}
	parsed := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := Parse(raw, Limits{})
		if err != nil || sub == nil {
			continue // Parse's own corpus test judges this
		}
		parsed++
		for _, pfx := range modes {
			for _, sfx := range modes {
				got, err := ParseSubject(sub.Subject, pfx, sfx)
				checkSubjectInvariants(t, sub.Subject, pfx, sfx, got, err)
			}
		}
		cmds, rest, err := ParseCommands(sub.Text)
		checkCommandInvariants(t, sub.Text, cmds, rest, err)
		if len(cmds) > 0 || err != nil {
			t.Errorf("%s: commands found in a corpus mail: %v, %v", f, cmds, err)
		}
	}
	if parsed == 0 {
		t.Errorf("no corpus mail parsed")
	}
}
