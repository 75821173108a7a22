package store_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

func TestIssues(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		bob := mustUser(t, s, "bob@example.org")
		created := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", -5*3600))
		is := &store.Issue{Title: "Crash on empty subject", Status: "unread", Priority: "urgent", AssigneeID: bob.ID,
			Keywords: []string{"mailgw", " crash", "mailgw", ""}, Created: created, CreatorID: alice.ID, ActorID: alice.ID}
		if err := s.CreateIssue(ctx, is); err != nil {
			t.Fatalf("CreateIssue: %v", err)
		}
		wantCreated := created.UTC().Truncate(time.Microsecond)
		if is.ID == 0 || !slices.Equal(is.Keywords, []string{"crash", "mailgw"}) || !is.Created.Equal(wantCreated) ||
			!is.Activity.Equal(wantCreated) || is.Created.Location() != time.UTC {
			t.Errorf("after CreateIssue: %+v", is)
		}
		got, err := s.Issue(ctx, is.ID)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(*got) != fmt.Sprint(*is) {
			t.Errorf("Issue = %+v\nwant    %+v", *got, *is)
		}

		// A second issue superseded by the first; update everything.
		is2 := mustIssue(t, s, "Duplicate crash", bob.ID)
		if is2.AssigneeID != 0 || is2.SupersederID != 0 || len(is2.Keywords) != 0 {
			t.Errorf("mustIssue: %+v", is2)
		}
		activity := created.Add(48 * time.Hour).UTC().Truncate(time.Microsecond)
		is2.Title, is2.Status, is2.Priority, is2.AssigneeID, is2.SupersederID = "Dup", "resolved", "wish", alice.ID, is.ID
		is2.Keywords, is2.Activity, is2.ActorID = []string{"z", "a"}, activity, alice.ID
		if err := s.UpdateIssue(ctx, is2); err != nil {
			t.Fatalf("UpdateIssue: %v", err)
		}
		got, err = s.Issue(ctx, is2.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "Dup" || got.Status != "resolved" || got.Priority != "wish" || got.AssigneeID != alice.ID ||
			got.SupersederID != is.ID || !slices.Equal(got.Keywords, []string{"a", "z"}) || !got.Activity.Equal(activity) ||
			got.ActorID != alice.ID || got.CreatorID != bob.ID || !got.Created.Equal(is2.Created) {
			t.Errorf("after UpdateIssue: %+v", got)
		}
		// Zero Activity keeps the stored one; keywords can be emptied;
		// the assignee can be removed.
		got.Activity, got.Keywords, got.AssigneeID = time.Time{}, nil, 0
		if err := s.UpdateIssue(ctx, got); err != nil {
			t.Fatal(err)
		}
		got, err = s.Issue(ctx, is2.ID)
		if err != nil || !got.Activity.Equal(activity) || len(got.Keywords) != 0 || got.AssigneeID != 0 {
			t.Errorf("after UpdateIssue(zero activity, no keywords): %+v, %v", got, err)
		}

		_, err = s.Issue(ctx, 999999)
		wantErr(t, "Issue(missing)", err, store.ErrNotFound)
		wantErr(t, "UpdateIssue(missing)", s.UpdateIssue(ctx, &store.Issue{ID: 999999}), store.ErrNotFound)
		if err := s.CreateIssue(ctx, &store.Issue{Title: "x", Keywords: []string{"a,b"}}); err == nil {
			t.Error("CreateIssue(keyword with a comma) succeeded")
		}
	})
}

func TestListIssues(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org")
		bob := mustUser(t, s, "bob@example.org")
		base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		// id order: 1..6; activity order (newest first): 3 6 1 5 2 4.
		specs := []struct {
			title, status, priority string
			assignee                int64
			keywords                []string
			activityHours           int
		}{
			{"banana bread", "unread", "bug", alice.ID, []string{"food"}, 40},
			{"Apple pie", "chatting", "urgent", 0, nil, 20},
			{"cherry", "resolved", "critical", bob.ID, []string{"food", "red"}, 60},
			{"date", "unread", "wish", 0, nil, 10},
			{"elderberry", "chatting", "bug", alice.ID, []string{"red"}, 30},
			{"Fig", "unread", "feature", 0, nil, 50},
		}
		ids := map[string]int64{}
		for i, sp := range specs {
			is := &store.Issue{Title: sp.title, Status: sp.status, Priority: sp.priority, AssigneeID: sp.assignee,
				Keywords: sp.keywords, Created: base.Add(time.Duration(i) * time.Hour),
				Activity: base.Add(time.Duration(sp.activityHours) * time.Hour)}
			if err := s.CreateIssue(ctx, is); err != nil {
				t.Fatal(err)
			}
			ids[sp.title] = is.ID
		}
		titles := func(f store.IssueFilter) []string {
			t.Helper()
			list, err := s.ListIssues(ctx, f)
			if err != nil {
				t.Fatalf("ListIssues(%+v): %v", f, err)
			}
			var out []string
			for _, is := range list {
				out = append(out, is.Title)
			}
			n, err := s.CountIssues(ctx, f)
			if err != nil {
				t.Fatalf("CountIssues(%+v): %v", f, err)
			}
			if f.Limit == 0 && f.Offset == 0 && n != len(out) {
				t.Errorf("CountIssues(%+v) = %d, ListIssues has %d", f, n, len(out))
			}
			return out
		}
		for _, tc := range []struct {
			f    store.IssueFilter
			want []string
		}{
			{store.IssueFilter{}, []string{"cherry", "Fig", "banana bread", "elderberry", "Apple pie", "date"}},
			{store.IssueFilter{Sort: "activity"}, []string{"cherry", "Fig", "banana bread", "elderberry", "Apple pie", "date"}},
			{store.IssueFilter{Sort: "-activity"}, []string{"date", "Apple pie", "elderberry", "banana bread", "Fig", "cherry"}},
			{store.IssueFilter{Sort: "id"}, []string{"banana bread", "Apple pie", "cherry", "date", "elderberry", "Fig"}},
			{store.IssueFilter{Sort: "-id"}, []string{"Fig", "elderberry", "date", "cherry", "Apple pie", "banana bread"}},
			{store.IssueFilter{Sort: "created"}, []string{"banana bread", "Apple pie", "cherry", "date", "elderberry", "Fig"}},
			{store.IssueFilter{Sort: "-created"}, []string{"Fig", "elderberry", "date", "cherry", "Apple pie", "banana bread"}},
			{store.IssueFilter{Sort: "title"}, []string{"Apple pie", "banana bread", "cherry", "date", "elderberry", "Fig"}},
			{store.IssueFilter{Sort: "-title"}, []string{"Fig", "elderberry", "date", "cherry", "banana bread", "Apple pie"}},
			{store.IssueFilter{Sort: "priority"}, []string{"banana bread", "elderberry", "cherry", "Fig", "Apple pie", "date"}},
			{store.IssueFilter{Sort: "priority", PriorityOrder: []string{"critical", "urgent", "bug", "feature", "wish"}},
				[]string{"cherry", "Apple pie", "banana bread", "elderberry", "Fig", "date"}},
			{store.IssueFilter{Sort: "-priority", PriorityOrder: []string{"critical", "urgent", "bug"}},
				[]string{"Fig", "date", "elderberry", "banana bread", "Apple pie", "cherry"}},
			{store.IssueFilter{Statuses: []string{"unread"}, Sort: "id"}, []string{"banana bread", "date", "Fig"}},
			{store.IssueFilter{Statuses: []string{"unread", "chatting"}, Sort: "id"}, []string{"banana bread", "Apple pie", "date", "elderberry", "Fig"}},
			{store.IssueFilter{Priority: "bug", Sort: "id"}, []string{"banana bread", "elderberry"}},
			{store.IssueFilter{Keyword: "red", Sort: "id"}, []string{"cherry", "elderberry"}},
			{store.IssueFilter{Keyword: "food", Statuses: []string{"unread"}}, []string{"banana bread"}},
			{store.IssueFilter{AssigneeID: alice.ID, Sort: "id"}, []string{"banana bread", "elderberry"}},
			{store.IssueFilter{AssigneeID: -1, Sort: "id"}, []string{"Apple pie", "date", "Fig"}},
			{store.IssueFilter{Statuses: []string{"nonesuch"}}, nil},
			// Paging.
			{store.IssueFilter{Sort: "id", Limit: 2}, []string{"banana bread", "Apple pie"}},
			{store.IssueFilter{Sort: "id", Limit: 2, Offset: 2}, []string{"cherry", "date"}},
			{store.IssueFilter{Sort: "id", Limit: 10, Offset: 5}, []string{"Fig"}},
			{store.IssueFilter{Sort: "id", Offset: 4}, []string{"elderberry", "Fig"}},
			{store.IssueFilter{Sort: "id", Offset: 6}, nil},
		} {
			if got := titles(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("ListIssues(%+v) = %q\nwant %q", tc.f, got, tc.want)
			}
		}
		if n, err := s.CountIssues(ctx, store.IssueFilter{Statuses: []string{"unread"}, Limit: 1, Offset: 1}); err != nil || n != 3 {
			t.Errorf("CountIssues ignores paging: got %d, %v; want 3", n, err)
		}
		if _, err := s.ListIssues(ctx, store.IssueFilter{Sort: "nonsense"}); err == nil {
			t.Error("ListIssues(Sort: nonsense) succeeded")
		}
	})
}

func TestSearch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "alice@example.org")
		crash := mustIssue(t, s, "Crash on empty subject", u.ID)
		slow := mustIssue(t, s, "Slow index page", u.ID)
		other := mustIssue(t, s, "Unrelated", u.ID)
		mustMessage(t, s, crash.ID, u.ID, "<1@x>", "The gateway panics with a nil pointer.")
		mustMessage(t, s, slow.ID, u.ID, "<2@x>", "Rendering takes 30 seconds; the Database is fine.")
		mustMessage(t, s, slow.ID, u.ID, "<3@x>", "Maybe the template cache? Naïve guess.")
		mustMessage(t, s, other.ID, u.ID, "<4@x>", "Nothing to see.")

		search := func(q string) []int64 {
			t.Helper()
			list, err := s.ListIssues(ctx, store.IssueFilter{Query: q, Sort: "id"})
			if err != nil {
				t.Fatalf("ListIssues(Query %q): %v", q, err)
			}
			var ids []int64
			for _, is := range list {
				ids = append(ids, is.ID)
			}
			n, err := s.CountIssues(ctx, store.IssueFilter{Query: q})
			if err != nil || n != len(ids) {
				t.Errorf("CountIssues(Query %q) = %d, %v; ListIssues has %d", q, n, err, len(ids))
			}
			return ids
		}
		for _, tc := range []struct {
			q    string
			want []int64
		}{
			{"crash", []int64{crash.ID}},             // a title word
			{"SUBJECT", []int64{crash.ID}},           // case does not matter
			{"panics", []int64{crash.ID}},            // a message word
			{"database", []int64{slow.ID}},           // in a message, other case
			{"slow cache", []int64{slow.ID}},         // title word and a word of another message: all words must occur in the issue
			{"rendering template", []int64{slow.ID}}, // words from two messages of one issue
			{"crash database", nil},                  // words of two different issues
			{"naïve", []int64{slow.ID}},              // non-ASCII
			{"the", []int64{crash.ID, slow.ID}},      // no stop words
			{"pane", nil},                            // whole words only
			{"  nil-pointer!  ", []int64{crash.ID}},  // punctuation splits words
			{"\"nothing\" OR -x*", nil},              // FTS syntax is just text: "nothing" "or" "x" must all occur
			{"!!!", nil},                             // no word at all: nothing
			{"seconds 30", []int64{slow.ID}},         // digits
		} {
			if got := search(tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("search %q = %v, want %v", tc.q, got, tc.want)
			}
		}

		// The index follows title changes.
		other.Title = "Frobnicator broken"
		if err := s.UpdateIssue(ctx, other); err != nil {
			t.Fatal(err)
		}
		if got := search("frobnicator"); !slices.Equal(got, []int64{other.ID}) {
			t.Errorf("search after retitle = %v, want [%d]", got, other.ID)
		}
		if got := search("unrelated"); got != nil {
			t.Errorf("search for the old title = %v, want none", got)
		}
		// Search combines with the other filters.
		other.Status = "resolved"
		if err := s.UpdateIssue(ctx, other); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListIssues(ctx, store.IssueFilter{Query: "nothing frobnicator", Statuses: []string{"resolved"}})
		if err != nil || len(list) != 1 || list[0].ID != other.ID {
			t.Errorf("search with status = %+v, %v", list, err)
		}
	})
}

func TestNosy(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		alice := mustUser(t, s, "alice@example.org", "alice@work.example")
		bob := mustUser(t, s, "bob@example.org")
		is := mustIssue(t, s, "Nosy", alice.ID)

		for _, step := range []struct {
			user int64
			want bool
		}{{bob.ID, true}, {alice.ID, true}, {bob.ID, false}} {
			added, err := s.AddNosy(ctx, is.ID, step.user)
			if err != nil || added != step.want {
				t.Errorf("AddNosy(%d) = %v, %v; want %v", step.user, added, err, step.want)
			}
		}
		ns, err := s.Nosy(ctx, is.ID)
		if err != nil || len(ns) != 2 || ns[0].ID != alice.ID || ns[1].ID != bob.ID ||
			!slices.Equal(ns[0].Alternates, []string{"alice@work.example"}) {
			t.Errorf("Nosy = %+v, %v", ns, err)
		}
		if removed, err := s.RemoveNosy(ctx, is.ID, bob.ID); err != nil || !removed {
			t.Errorf("RemoveNosy = %v, %v", removed, err)
		}
		if removed, err := s.RemoveNosy(ctx, is.ID, bob.ID); err != nil || removed {
			t.Errorf("RemoveNosy(again) = %v, %v", removed, err)
		}
		if ns, err := s.Nosy(ctx, is.ID); err != nil || len(ns) != 1 || ns[0].ID != alice.ID {
			t.Errorf("Nosy after remove = %+v, %v", ns, err)
		}
		if _, err := s.AddNosy(ctx, is.ID, 999999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddNosy(missing user) = %v, want ErrNotFound", err)
		}
		if ns, err := s.Nosy(ctx, 999999); err != nil || len(ns) != 0 {
			t.Errorf("Nosy(missing issue) = %v, %v", ns, err)
		}
	})
}

// TestCreateIssueWithMessage: the issue and its first message are stored
// as by CreateIssue and CreateMessage, both searchable by the title's and
// the message's words, keywords included; a second use of the author's
// Message-ID is ErrDuplicate and, on the Store itself, leaves nothing.
func TestCreateIssueWithMessage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "opener@example.org")
		is := &store.Issue{Title: "Printer melts", Status: "unread", Priority: "bug", CreatorID: u.ID, ActorID: u.ID, Keywords: []string{"hardware"}}
		m := &store.Message{AuthorID: u.ID, MessageID: "<open@x>", Content: "the toner is smoking", FullText: "the toner is smoking\n> quoted", References: []string{"<r@x>"}}
		if err := s.CreateIssueWithMessage(ctx, is, m); err != nil {
			t.Fatal(err)
		}
		if is.ID == 0 || m.ID == 0 || m.IssueID != is.ID || m.Date.IsZero() {
			t.Fatalf("issue %+v, message %+v: want ids, the message in the issue, a date", is, m)
		}
		got, err := s.Message(ctx, m.ID)
		if err != nil || got.IssueID != is.ID || got.Content != m.Content || got.FullText != m.FullText || !slices.Equal(got.References, m.References) {
			t.Errorf("Message = %+v, %v", got, err)
		}
		stored, err := s.Issue(ctx, is.ID)
		if err != nil || stored.Title != "Printer melts" || !slices.Equal(stored.Keywords, []string{"hardware"}) {
			t.Errorf("Issue = %+v, %v", stored, err)
		}
		for _, q := range []string{"printer", "toner", "melts smoking"} {
			n, err := s.CountIssues(ctx, store.IssueFilter{Query: q})
			if err != nil || n != 1 {
				t.Errorf("CountIssues(%q) = %d, %v; want 1", q, n, err)
			}
		}
		again := &store.Issue{Title: "Printer melts again", Status: "unread", Priority: "bug", CreatorID: u.ID, ActorID: u.ID}
		err = s.CreateIssueWithMessage(ctx, again, &store.Message{AuthorID: u.ID, MessageID: "<open@x>", Content: "again"})
		wantErr(t, "CreateIssueWithMessage with a used Message-ID", err, store.ErrDuplicate)
		if n, err := s.CountIssues(ctx, store.IssueFilter{}); err != nil || n != 1 {
			t.Errorf("%d issues (%v) after the duplicate, want 1", n, err)
		}
	})
}
