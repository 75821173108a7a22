package mailgw

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommands(t *testing.T) {
	cmd := func(line, name string, args ...string) Command {
		if len(args) == 0 {
			args = nil
		}
		return Command{Name: name, Args: args, Line: line}
	}
	cases := []struct {
		name     string
		body     string
		cmds     []Command
		rest     string
		wantErrs []string // one substring per *CommandError, in order
	}{
		{name: "empty", body: "", rest: ""},
		{name: "no commands", body: "Hello,\n\nthe printer is on fire.\n", rest: "Hello,\n\nthe printer is on fire.\n"},
		{name: "leading blank lines, no commands, body unchanged", body: "\n\n  \nHello\n", rest: "\n\n  \nHello\n"},
		{name: "signature only", body: "-- \nAlice\n", rest: "-- \nAlice\n"},
		{name: "status", body: "/status resolved\n", cmds: []Command{cmd("/status resolved", "status", "resolved")}, rest: ""},
		{name: "every command", body: "/status resolved\n/priority urgent\n/assign alice@example.org\n/unassign\n" +
			"/keyword +a -b\n/nosy +x@example.org -y@example.org\n/close\n/reopen\n/title New title\n/subscribe\n/unsubscribe\n",
			cmds: []Command{
				cmd("/status resolved", "status", "resolved"),
				cmd("/priority urgent", "priority", "urgent"),
				cmd("/assign alice@example.org", "assign", "alice@example.org"),
				cmd("/unassign", "unassign"),
				cmd("/keyword +a -b", "keyword", "+a", "-b"),
				cmd("/nosy +x@example.org -y@example.org", "nosy", "+x@example.org", "-y@example.org"),
				cmd("/close", "close"),
				cmd("/reopen", "reopen"),
				cmd("/title New title", "title", "New title"),
				cmd("/subscribe", "subscribe"),
				cmd("/unsubscribe", "unsubscribe"),
			}, rest: ""},
		{name: "commands followed directly by text", body: "/status resolved\nFixed in r123.\n/close\n",
			cmds: []Command{cmd("/status resolved", "status", "resolved")}, rest: "Fixed in r123.\n/close\n"},
		{name: "blank lines around and between", body: "\n\n/status resolved\n\n/priority urgent\n\n\nThanks,\nBob\n",
			cmds: []Command{cmd("/status resolved", "status", "resolved"), cmd("/priority urgent", "priority", "urgent")},
			rest: "Thanks,\nBob\n"},
		{name: "upper-case name", body: "/ASSIGN me\nTaking this.", cmds: []Command{cmd("/ASSIGN me", "assign", "me")}, rest: "Taking this."},
		{name: "mixed-case name, args kept", body: "/Status In-Progress", cmds: []Command{cmd("/Status In-Progress", "status", "In-Progress")}},
		{name: "CRLF", body: "/status resolved\r\n/nosy +bob@example.org\r\n\r\nDone.\r\nBye\r\n",
			cmds: []Command{cmd("/status resolved", "status", "resolved"), cmd("/nosy +bob@example.org", "nosy", "+bob@example.org")},
			rest: "Done.\r\nBye\r\n"},
		{name: "CR only", body: "/close\r\rDone.\r", cmds: []Command{cmd("/close", "close")}, rest: "Done.\r"},
		{name: "unknown slash line is text", body: "/usr/bin/python crashed\n", rest: "/usr/bin/python crashed\n"},
		{name: "unknown slash line ends the block", body: "/status resolved\n/usr/bin/python crashed\n/close\n",
			cmds: []Command{cmd("/status resolved", "status", "resolved")}, rest: "/usr/bin/python crashed\n/close\n"},
		{name: "glued name is unknown", body: "/statusresolved\n", rest: "/statusresolved\n"},
		{name: "slash alone is text", body: "/\nhi", rest: "/\nhi"},
		{name: "byte-order mark and zero-width space", body: "\ufeff/close\n\u200b\nbye", cmds: []Command{cmd("/close", "close")}, rest: "bye"},
		{name: "indented command", body: "  \t/close\nbye", cmds: []Command{cmd("/close", "close")}, rest: "bye"},
		{name: "text first: commands later are text", body: "Hi\n/close\n", rest: "Hi\n/close\n"},
		{name: "status with spaces", body: "/status   in    progress  ", cmds: []Command{cmd("/status   in    progress", "status", "in progress")}},
		{name: "title keeps words", body: "/title  Crash on  save (Windows)\n", cmds: []Command{cmd("/title  Crash on  save (Windows)", "title", "Crash on save (Windows)")}},
		{name: "keyword full list with commas", body: "/keyword a, b,c", cmds: []Command{cmd("/keyword a, b,c", "keyword", "a", "b", "c")}},
		{name: "keyword full list with spaces", body: "/keyword a b", cmds: []Command{cmd("/keyword a b", "keyword", "a", "b")}},
		{name: "keywords alias", body: "/keywords +a", cmds: []Command{cmd("/keywords +a", "keyword", "+a")}},
		{name: "lone sign joins next item", body: "/nosy + alice@example.org - bob@example.org",
			cmds: []Command{cmd("/nosy + alice@example.org - bob@example.org", "nosy", "+alice@example.org", "-bob@example.org")}},
		{name: "assign me", body: "/assign me", cmds: []Command{cmd("/assign me", "assign", "me")}},
		{name: "tab separated", body: "/priority\turgent", cmds: []Command{cmd("/priority\turgent", "priority", "urgent")}},
		{name: "no final newline, text", body: "/close\nbye", cmds: []Command{cmd("/close", "close")}, rest: "bye"},
		{name: "unicode title", body: "/title Ошибка — 保存", cmds: []Command{cmd("/title Ошибка — 保存", "title", "Ошибка — 保存")}},

		// Bad arity: the line is consumed, an error names it.
		{name: "status alone", body: "/status\nText", rest: "Text", wantErrs: []string{`"/status": /status needs a value; write /status resolved`}},
		{name: "close with argument", body: "/close now\n", wantErrs: []string{`"/close now": /close takes no argument; write /close alone on its line`}},
		{name: "assign two people", body: "/assign alice bob\n", wantErrs: []string{"/assign takes one person; write /assign alice@example.org or /assign me"}},
		{name: "assign nobody", body: "/assign", wantErrs: []string{"/assign needs a person"}},
		{name: "unassign with argument", body: "/unassign alice", wantErrs: []string{"/unassign takes no argument"}},
		{name: "keyword empty", body: "/keyword , ,", wantErrs: []string{"/keyword needs at least one name"}},
		{name: "dangling sign", body: "/nosy +bob -", wantErrs: []string{`"-" is followed by no name`}},
		{name: "double sign", body: "/nosy + -bob", wantErrs: []string{`"+" is followed by no name`}},
		{name: "errors and good commands together", body: "/status\n/priority urgent\n/close now\nText\n",
			cmds: []Command{cmd("/priority urgent", "priority", "urgent")}, rest: "Text\n",
			wantErrs: []string{"/status needs a value", "/close takes no argument"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmds, rest, err := ParseCommands(tc.body)
			if diff := cmp.Diff(tc.cmds, cmds); diff != "" {
				t.Errorf("ParseCommands(%q) commands (-want +got):\n%s", tc.body, diff)
			}
			if rest != tc.rest {
				t.Errorf("ParseCommands(%q) rest = %q, want %q", tc.body, rest, tc.rest)
			}
			var got []string
			if err != nil {
				var errs []error
				if j, ok := err.(interface{ Unwrap() []error }); ok {
					errs = j.Unwrap()
				} else {
					errs = []error{err}
				}
				for _, e := range errs {
					var ce *CommandError
					if !errors.As(e, &ce) {
						t.Errorf("ParseCommands(%q): error %v is not a *CommandError", tc.body, e)
					}
					got = append(got, e.Error())
				}
			}
			if len(got) != len(tc.wantErrs) {
				t.Fatalf("ParseCommands(%q) errors = %q, want %d matching %q", tc.body, got, len(tc.wantErrs), tc.wantErrs)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.wantErrs[i]) {
					t.Errorf("ParseCommands(%q) error %d = %q, want it to contain %q", tc.body, i, got[i], tc.wantErrs[i])
				}
			}
			checkCommandInvariants(t, tc.body, cmds, rest, err)
		})
	}
}

func TestCommandChange(t *testing.T) {
	cases := []struct {
		line string
		want PropChange
		ok   bool
	}{
		{"/status resolved", PropChange{Name: "status", Value: "resolved"}, true},
		{"/priority urgent", PropChange{Name: "priority", Value: "urgent"}, true},
		{"/title New title", PropChange{Name: "title", Value: "New title"}, true},
		{"/assign me", PropChange{Name: "assignedto", Value: "me"}, true},
		{"/unassign", PropChange{Name: "assignedto"}, true},
		{"/keyword a b", PropChange{Name: "keyword", Value: "a,b", Set: []string{"a", "b"}}, true},
		{"/keyword a +b -c", PropChange{Name: "keyword", Value: "a,+b,-c", Add: []string{"a", "b"}, Remove: []string{"c"}}, true},
		{"/nosy -bob@example.org", PropChange{Name: "nosy", Value: "-bob@example.org", Remove: []string{"bob@example.org"}}, true},
		{"/close", PropChange{}, false},
		{"/reopen", PropChange{}, false},
		{"/subscribe", PropChange{}, false},
		{"/unsubscribe", PropChange{}, false},
	}
	for _, tc := range cases {
		cmds, _, err := ParseCommands(tc.line)
		if err != nil || len(cmds) != 1 {
			t.Fatalf("ParseCommands(%q) = %v, %v", tc.line, cmds, err)
		}
		got, ok := cmds[0].Change()
		if ok != tc.ok {
			t.Errorf("%q.Change() ok = %v, want %v", tc.line, ok, tc.ok)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q.Change() (-want +got):\n%s", tc.line, diff)
		}
	}
	if _, ok := (Command{Name: "status"}).Change(); ok {
		t.Errorf("Command{Name: status}.Change() ok with no argument")
	}
}

// checkCommandInvariants checks what holds for every body; the fuzz
// target and the table share it.
func checkCommandInvariants(t *testing.T, body string, cmds []Command, rest string, err error) {
	t.Helper()
	if !strings.HasSuffix(body, rest) {
		t.Errorf("ParseCommands(%q): rest %q is not a suffix of the body", body, rest)
	}
	if len(cmds) == 0 && err == nil && rest != body {
		t.Errorf("ParseCommands(%q): no command but rest %q", body, rest)
	}
	for _, c := range cmds {
		if _, _, ok := cmdLookup(c.Name); !ok || !strings.Contains(body, c.Line) || !strings.HasPrefix(c.Line, "/") {
			t.Errorf("ParseCommands(%q): bad command %#v", body, c)
		}
	}
	// rest starts with text: parsing it again finds nothing.
	if again, rest2, err2 := ParseCommands(rest); len(again) != 0 || err2 != nil || rest2 != rest {
		t.Errorf("ParseCommands(rest %q) = %v, %q, %v; want no commands", rest, again, rest2, err2)
	}
	// The commands written out again parse to themselves.
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "/%s %s\n", c.Name, strings.Join(c.Args, " "))
	}
	again, rest3, err3 := ParseCommands(b.String() + rest)
	if err3 != nil || rest3 != rest || len(again) != len(cmds) {
		t.Errorf("ParseCommands(rewritten %q) = %v, %q, %v; want %v, %q", b.String()+rest, again, rest3, err3, cmds, rest)
		return
	}
	for i := range again {
		if again[i].Name != cmds[i].Name || !cmp.Equal(again[i].Args, cmds[i].Args) {
			t.Errorf("ParseCommands(rewritten): command %d = %#v, want %#v", i, again[i], cmds[i])
		}
	}
}

func FuzzCommands(f *testing.F) {
	for _, s := range []string{
		"", "/status resolved\nFixed.\n", "\r\n/ASSIGN me\r\n\r\ntext", "/usr/bin/python crashed",
		"/nosy + a - b,c\n/keyword\n/close now\n", "/title  x  y \r/reopen\rz", "-- \nsig", "/\n/ \n/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cmds, rest, err := ParseCommands(body)
		checkCommandInvariants(t, body, cmds, rest, err)
	})
}
