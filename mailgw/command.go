package mailgw

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Command is one body command (DESIGN §5): a line such as
// "/status resolved" at the top of a mail's text.
type Command struct {
	// Name is the canonical command name: "status", "priority", "assign",
	// "unassign", "keyword", "nosy", "close", "reopen", "title",
	// "subscribe" or "unsubscribe".
	Name string
	// Args are the arguments:
	//   - status, priority, title: one, the rest of the line with
	//     whitespace collapsed ("/status in progress" → ["in progress"]);
	//   - assign: one, the person as written ("me", an address, a username);
	//   - keyword, nosy: one or more items split at blanks and commas, each
	//     as written with its + or - ("+a", "-b", "c"); a sign standing
	//     alone is joined to the next item ("+ alice" → "+alice");
	//   - the others: none (nil).
	Args []string
	// Line is the command line as written, without surrounding whitespace
	// (or byte-order mark) and line break.
	Line string
}

// CommandError is a known command written with the wrong arguments. Its
// message says what to write instead; ParseCommands joins one per bad line
// with errors.Join.
type CommandError struct {
	Line    string // the line as written, trimmed
	Problem string // what is wrong and what to write instead
}

func (e *CommandError) Error() string { return fmt.Sprintf("%q: %s", e.Line, e.Problem) }

// Change returns the command as a property change with the same meaning as
// the subject suffix has: status, priority and title set the value;
// assign sets assignedto (Value "me" is left to the caller to resolve) and
// unassign clears it; keyword and nosy follow the list rules of
// PropChange (without any sign a full list, else additions and removals).
// ok is false for close, reopen, subscribe and unsubscribe, whose meaning
// depends on the schema or the author, and for a command whose arguments
// do not fit.
func (c Command) Change() (pc PropChange, ok bool) {
	switch c.Name {
	case "status", "priority", "title":
		if len(c.Args) != 1 {
			return PropChange{}, false
		}
		return PropChange{Name: c.Name, Value: c.Args[0]}, true
	case "assign":
		if len(c.Args) != 1 {
			return PropChange{}, false
		}
		return PropChange{Name: "assignedto", Value: c.Args[0]}, true
	case "unassign":
		return PropChange{Name: "assignedto"}, true
	case "keyword", "nosy":
		set, add, remove, bad := subjListChange(c.Args)
		if bad != "" || len(c.Args) == 0 {
			return PropChange{}, false
		}
		return PropChange{Name: c.Name, Value: strings.Join(c.Args, ","), Set: set, Add: add, Remove: remove}, true
	}
	return PropChange{}, false
}

// cmdArity is how a command takes its arguments.
type cmdArity int

const (
	cmdNone  cmdArity = iota // no argument
	cmdText                  // the rest of the line, required
	cmdOne                   // exactly one word
	cmdItems                 // one or more list items
)

type cmdSpec struct {
	arity   cmdArity
	example string // what to write, for error messages
}

// cmdLookup returns the canonical name and the spec of the command
// called name (lowercase); ok is false for an unknown name.
func cmdLookup(name string) (canonical string, spec cmdSpec, ok bool) {
	if name == "keywords" {
		name = "keyword"
	}
	switch name {
	case "status":
		spec = cmdSpec{cmdText, "/status resolved"}
	case "priority":
		spec = cmdSpec{cmdText, "/priority urgent"}
	case "title":
		spec = cmdSpec{cmdText, "/title A better title"}
	case "assign":
		spec = cmdSpec{cmdOne, "/assign alice@example.org or /assign me"}
	case "keyword":
		spec = cmdSpec{cmdItems, "/keyword +name -other, or a full list: /keyword name other"}
	case "nosy":
		spec = cmdSpec{cmdItems, "/nosy +alice@example.org -bob@example.org"}
	case "unassign", "close", "reopen", "subscribe", "unsubscribe":
		spec = cmdSpec{cmdNone, "/" + name + " alone on its line"}
	default:
		return "", cmdSpec{}, false
	}
	return name, spec, true
}

// ParseCommands takes the body commands off the top of a mail's text.
//
// The command block is the lines at the very top of body: blank lines and
// lines of the form "/name arguments", where name is a known command in any
// case (Command.Name lists them; "/keywords" is taken for "/keyword") and
// leading whitespace is allowed. It ends at the first other line — text, a
// signature, or a line starting with '/' that is not a known command
// ("/usr/bin/python crashed"), which is text.
//
// rest is body without the command block: it starts at the line that ended
// the block (blank lines after the commands are dropped with them) and is
// "" when the block reaches the end. When body has no command line, rest is
// body unchanged. Lines may end in "\n", "\r\n" or a lone "\r"; the text in
// rest keeps its line endings.
//
// err joins one *CommandError for each known command written with the
// wrong arguments ("/status" alone, "/close now"). Those lines are still
// part of the block and removed from rest, and cmds holds the valid
// commands, so the caller decides whether to refuse the mail or apply what
// it can; DESIGN §5 says to refuse and tell the sender.
func ParseCommands(body string) (cmds []Command, rest string, err error) {
	var errs []error
	consumed := false // a command line (valid or not) was seen
	pos := 0
	for pos < len(body) {
		line, next := cmdNextLine(body, pos)
		trimmed := strings.TrimFunc(line, cmdIsBlank)
		if trimmed == "" {
			pos = next
			continue
		}
		cmd, known, cerr := parseCommandLine(trimmed)
		if !known {
			break
		}
		consumed = true
		if cerr != nil {
			errs = append(errs, cerr)
		} else {
			cmds = append(cmds, cmd)
		}
		pos = next
	}
	if !consumed {
		return nil, body, nil
	}
	return cmds, body[pos:], errors.Join(errs...)
}

// cmdIsBlank reports whether r is blank at the ends of a line: white
// space, a byte-order mark, or a zero-width space (HTML-to-text leftovers).
func cmdIsBlank(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' || r == '\u200b' }

// cmdNextLine returns the line starting at pos, without its line break,
// and the position after the break.
func cmdNextLine(s string, pos int) (line string, next int) {
	i := strings.IndexAny(s[pos:], "\r\n")
	if i < 0 {
		return s[pos:], len(s)
	}
	end := pos + i
	next = end + 1
	if s[end] == '\r' && next < len(s) && s[next] == '\n' {
		next++
	}
	return s[pos:end], next
}

// parseCommandLine parses one trimmed, non-empty line. known is false
// when the line is not a command line at all; err is a *CommandError for a
// known command with the wrong arguments.
func parseCommandLine(line string) (cmd Command, known bool, err error) {
	if line[0] != '/' {
		return Command{}, false, nil
	}
	nameEnd := strings.IndexFunc(line, unicode.IsSpace)
	if nameEnd < 0 {
		nameEnd = len(line)
	}
	name, spec, ok := cmdLookup(strings.ToLower(line[1:nameEnd]))
	if !ok {
		return Command{}, false, nil
	}
	args := strings.TrimFunc(line[nameEnd:], unicode.IsSpace)
	cmd = Command{Name: name, Line: line}
	bad := func(problem string) (Command, bool, error) {
		return Command{}, true, &CommandError{Line: line, Problem: problem + "; write " + spec.example}
	}
	switch spec.arity {
	case cmdNone:
		if args != "" {
			return bad(fmt.Sprintf("/%s takes no argument", name))
		}
	case cmdText:
		if args == "" {
			return bad(fmt.Sprintf("/%s needs a value", name))
		}
		cmd.Args = []string{strings.Join(strings.Fields(args), " ")}
	case cmdOne:
		f := strings.Fields(args)
		switch {
		case len(f) == 0:
			return bad(fmt.Sprintf("/%s needs a person", name))
		case len(f) > 1:
			return bad(fmt.Sprintf("/%s takes one person", name))
		}
		cmd.Args = f
	case cmdItems:
		items, problem := cmdSplitItems(args)
		if problem != "" {
			return bad(problem)
		}
		if len(items) == 0 {
			return bad(fmt.Sprintf("/%s needs at least one name", name))
		}
		cmd.Args = items
	}
	return cmd, true, nil
}

// cmdSplitItems splits list arguments at whitespace and commas, joining a
// lone sign to the item after it ("+ alice"). problem, when not "", is a
// lone sign with no name after it ("+" at the end, "+ -bob").
func cmdSplitItems(args string) (items []string, problem string) {
	fields := strings.FieldsFunc(args, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	sign := ""
	for _, f := range fields {
		if sign != "" && (f[0] == '+' || f[0] == '-') {
			return nil, fmt.Sprintf("%q is followed by no name", sign)
		}
		if f == "+" || f == "-" {
			sign = f
			continue
		}
		items = append(items, sign+f)
		sign = ""
	}
	if sign != "" {
		return nil, fmt.Sprintf("%q is followed by no name", sign)
	}
	return items, ""
}
