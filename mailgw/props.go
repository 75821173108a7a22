package mailgw

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/trackerd/trackerd/store"
)

// knownProps are the properties a subject suffix or a command may set.
const knownProps = "status, priority, assignedto, title, superseder, keyword, nosy"

// checkProps checks what can be checked of a subject suffix without
// changing anything: the property names and the values of fixed lists.
// In loose mode a suffix that fails is title text instead.
func (f *filing) checkProps(props []PropChange) error {
	schema := &f.g.cfg.Schema
	for _, pc := range props {
		switch pc.Name {
		case "status":
			if _, ok := canonical(schema.Statuses, pc.Value); !ok {
				return rejectf("unknown status %q: use one of %s", pc.Value, strings.Join(schema.Statuses, ", "))
			}
		case "priority":
			if _, ok := canonical(schema.Priorities, pc.Value); !ok {
				return rejectf("unknown priority %q: use one of %s", pc.Value, strings.Join(schema.Priorities, ", "))
			}
		case "assignedto", "title", "superseder", "keyword", "nosy":
		default:
			return rejectf("unknown property %q in the subject: the properties are %s", pc.Name, knownProps)
		}
	}
	return nil
}

// applyCommand applies one body command.
func (f *filing) applyCommand(ctx context.Context, c Command) error {
	if pc, ok := c.Change(); ok {
		return f.applyProp(ctx, pc)
	}
	schema := &f.g.cfg.Schema
	switch c.Name {
	case "close":
		return f.applyProp(ctx, PropChange{Name: "status", Value: schema.ClosedStatuses[0]})
	case "reopen":
		return f.applyProp(ctx, PropChange{Name: "status", Value: schema.ReopenStatus})
	case "subscribe":
		f.nosyJoin(f.author)
		return nil
	case "unsubscribe":
		f.nosyLeave(f.author)
		return nil
	}
	return rejectf("the command %q cannot be used here", c.Line)
}

// applyProp applies one property change to f.issue, recording it.
func (f *filing) applyProp(ctx context.Context, pc PropChange) error {
	schema := &f.g.cfg.Schema
	is := f.issue
	switch pc.Name {
	case "status":
		v, ok := canonical(schema.Statuses, pc.Value)
		if !ok {
			return rejectf("unknown status %q: use one of %s", pc.Value, strings.Join(schema.Statuses, ", "))
		}
		f.statusSet = true
		f.set("status", is.Status, v)
		is.Status = v
	case "priority":
		v, ok := canonical(schema.Priorities, pc.Value)
		if !ok {
			return rejectf("unknown priority %q: use one of %s", pc.Value, strings.Join(schema.Priorities, ", "))
		}
		f.set("priority", is.Priority, v)
		is.Priority = v
	case "title":
		v := strings.TrimSpace(pc.Value)
		if v == "" {
			return rejectf("the title cannot be empty")
		}
		f.set("title", is.Title, v)
		is.Title = v
	case "assignedto":
		old, err := f.addressOf(ctx, is.AssigneeID)
		if err != nil {
			return err
		}
		if strings.TrimSpace(pc.Value) == "" {
			f.set("assignedto", old, "")
			is.AssigneeID, f.assignee = 0, nil
			return nil
		}
		u, err := f.named(ctx, pc.Value, false)
		if err != nil {
			return err
		}
		f.set("assignedto", old, u.Address)
		is.AssigneeID, f.assignee = u.ID, u
	case "superseder":
		old := ""
		if is.SupersederID != 0 {
			old = strconv.FormatInt(is.SupersederID, 10)
		}
		v := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(pc.Value)), "issue")
		if v == "" {
			f.set("superseder", old, "")
			is.SupersederID = 0
			return nil
		}
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return rejectf("superseder %q is not an issue number (write superseder=issue12)", pc.Value)
		}
		if id == is.ID {
			return rejectf("an issue cannot supersede itself")
		}
		if _, err := f.tx.Issue(ctx, id); errors.Is(err, store.ErrNotFound) {
			return rejectf("superseder: there is no issue %d", id)
		} else if err != nil {
			return err
		}
		f.set("superseder", old, strconv.FormatInt(id, 10))
		is.SupersederID = id
	case "keyword":
		next, err := f.keywords(pc)
		if err != nil {
			return err
		}
		f.set("keyword", strings.Join(is.Keywords, ", "), strings.Join(next, ", "))
		is.Keywords = next
	case "nosy":
		return f.applyNosy(ctx, pc)
	default:
		return rejectf("unknown property %q: the properties are %s", pc.Name, knownProps)
	}
	return nil
}

// keywords computes the issue's keywords after pc. With schema.keywords
// empty any keyword is accepted; otherwise only those listed.
func (f *filing) keywords(pc PropChange) ([]string, error) {
	allowed := f.g.cfg.Schema.Keywords
	norm := func(k string) (string, error) {
		k = strings.TrimSpace(k)
		if len(allowed) == 0 {
			return k, nil
		}
		if v, ok := canonical(allowed, k); ok {
			return v, nil
		}
		return "", rejectf("unknown keyword %q: use one of %s", k, strings.Join(allowed, ", "))
	}
	set := map[string]bool{}
	if pc.Set == nil {
		for _, k := range f.issue.Keywords {
			set[k] = true
		}
	}
	for _, l := range [][]string{pc.Set, pc.Add} {
		for _, k := range l {
			v, err := norm(k)
			if err != nil {
				return nil, err
			}
			if v != "" {
				set[v] = true
			}
		}
	}
	for _, k := range pc.Remove {
		v, err := norm(k)
		if err != nil {
			return nil, err
		}
		delete(set, v)
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// applyNosy records explicit nosy changes (+x, -y, or a full list).
func (f *filing) applyNosy(ctx context.Context, pc PropChange) error {
	if pc.Set != nil {
		keep := map[int64]bool{}
		for _, name := range pc.Set {
			u, err := f.named(ctx, name, true)
			if err != nil {
				return err
			}
			keep[u.ID] = true
			f.nosyJoin(u)
		}
		if f.issue.ID != 0 {
			members, err := f.tx.Nosy(ctx, f.issue.ID)
			if err != nil {
				return err
			}
			for i := range members {
				if !keep[members[i].ID] {
					f.nosyLeave(&members[i])
				}
			}
		}
	}
	for _, name := range pc.Add {
		u, err := f.named(ctx, name, true)
		if err != nil {
			return err
		}
		f.nosyJoin(u)
	}
	for _, name := range pc.Remove {
		u, err := f.named(ctx, name, false)
		if err != nil {
			return err
		}
		f.nosyLeave(u)
	}
	return nil
}

func (f *filing) nosyJoin(u *store.User) {
	delete(f.nosyDrop, u.ID)
	f.nosyAdd[u.ID] = u
}

func (f *filing) nosyLeave(u *store.User) {
	delete(f.nosyAdd, u.ID)
	f.nosyDrop[u.ID] = u
}

// nosyNote records the explicit nosy changes as one change line.
func (f *filing) nosyNote() {
	var add, drop []string
	for _, u := range f.nosyAdd {
		add = append(add, "+"+u.Address)
	}
	for _, u := range f.nosyDrop {
		drop = append(drop, "-"+u.Address)
	}
	sort.Strings(add)
	sort.Strings(drop)
	parts := append(add, drop...)
	if len(parts) == 0 {
		return
	}
	v := strings.Join(parts, " ")
	f.changes = append(f.changes, change{prop: "nosy", new: v, note: "nosy: " + v})
}

// named finds a user by "me", an address or a username. create says
// whether an unknown address may become a user (by unknown_sender).
func (f *filing) named(ctx context.Context, name string, create bool) (*store.User, error) {
	name = strings.TrimSpace(name)
	if strings.EqualFold(name, "me") {
		return f.author, nil
	}
	if strings.Contains(name, "@") {
		if f.g.addr.isTracker(name) {
			return nil, rejectf("%s is the tracker itself, not a user", name)
		}
		if create {
			u, err := f.user(ctx, Address{Addr: name})
			if errors.Is(err, errUnknownUser) {
				return nil, rejectf("%s is not a user of this tracker", name)
			}
			return u, err
		}
		u, err := f.tx.UserByAddress(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, rejectf("%s is not a user of this tracker", name)
		}
		return u, err
	}
	u, err := f.tx.UserByUsername(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, rejectf("there is no user %q: name people by address or username", name)
	}
	return u, err
}

// addressOf is the primary address of user id, "" for 0.
func (f *filing) addressOf(ctx context.Context, id int64) (string, error) {
	if id == 0 {
		return "", nil
	}
	u, err := f.tx.UserByID(ctx, id)
	if err != nil {
		return "", err
	}
	return u.Address, nil
}

// set records a change of prop from old to new (a no-op when equal). A
// property changed twice by one mail keeps its first old value.
func (f *filing) set(prop, old, new string) {
	for i := range f.changes {
		if f.changes[i].prop == prop {
			f.changes[i].new = new
			f.changes[i].note = note(prop, f.changes[i].old, new)
			return
		}
	}
	if old == new {
		return
	}
	f.changes = append(f.changes, change{prop: prop, old: old, new: new, note: note(prop, old, new)})
}

func note(prop, old, new string) string {
	if prop == "keyword" {
		return prop + ": " + listDiff(old, new)
	}
	if old == "" {
		old = "(none)"
	}
	if new == "" {
		new = "(none)"
	}
	return fmt.Sprintf("%s: %s -> %s", prop, old, new)
}

// listDiff writes the change between two ", "-joined lists as "+a -b".
func listDiff(old, new string) string {
	split := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, v := range strings.Split(s, ", ") {
			if v != "" {
				m[v] = true
			}
		}
		return m
	}
	o, n := split(old), split(new)
	var parts []string
	for _, v := range strings.Split(new, ", ") {
		if v != "" && !o[v] {
			parts = append(parts, "+"+v)
		}
	}
	for _, v := range strings.Split(old, ", ") {
		if v != "" && !n[v] {
			parts = append(parts, "-"+v)
		}
	}
	return strings.Join(parts, " ")
}

// createdNote replaces the change list of a new issue with the values it
// was created with (DESIGN §6: "a new issue lists the values it was created
// with"), which also go to the journal.
func (f *filing) createdNote(ctx context.Context) error {
	is := f.issue
	f.changes = f.changes[:0]
	add := func(prop, v string) {
		if v != "" {
			f.changes = append(f.changes, change{prop: prop, new: v, note: prop + ": " + v})
		}
	}
	add("status", is.Status)
	add("priority", is.Priority)
	assignee, err := f.addressOf(ctx, is.AssigneeID)
	if err != nil {
		return err
	}
	add("assignedto", assignee)
	add("keyword", strings.Join(is.Keywords, ", "))
	if is.SupersederID != 0 {
		add("superseder", strconv.FormatInt(is.SupersederID, 10))
	}
	return nil
}

// canonical finds s in l case-insensitively and returns l's spelling.
func canonical(l []string, s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, v := range l {
		if strings.EqualFold(v, s) {
			return v, true
		}
	}
	return "", false
}
