package nosy

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	alice = Person{ID: 1, Address: "alice@example.org"}
	bob   = Person{ID: 2, Address: "bob@example.org"}
	carol = Person{ID: 3, Address: "Carol@Example.org"}
	dave  = Person{ID: 4, Address: "dave@example.org"}
)

func ptr(p Person) *Person { return &p }

func TestJoiners(t *testing.T) {
	cases := []struct {
		name       string
		r          Rules
		newIssue   bool
		author     Person
		recipients []Person
		assignee   *Person
		want       []Person
	}{
		{"author yes, new issue", Rules{AddAuthor: Yes}, true, alice, nil, nil, []Person{alice}},
		{"author yes, comment", Rules{AddAuthor: Yes}, false, alice, nil, nil, []Person{alice}},
		{"author new, new issue", Rules{AddAuthor: New}, true, alice, nil, nil, []Person{alice}},
		{"author new, comment", Rules{AddAuthor: New}, false, alice, nil, nil, nil},
		{"author no, new issue", Rules{AddAuthor: No}, true, alice, nil, nil, nil},
		{"author no, comment", Rules{AddAuthor: No}, false, alice, nil, nil, nil},
		{"author unknown value is no", Rules{AddAuthor: "always"}, true, alice, nil, nil, nil},
		{"author empty value is no", Rules{}, true, alice, nil, nil, nil},

		{"recipients yes, new issue", Rules{AddRecipients: Yes}, true, alice, []Person{bob, carol}, nil, []Person{bob, carol}},
		{"recipients yes, comment", Rules{AddRecipients: Yes}, false, alice, []Person{bob, carol}, nil, []Person{bob, carol}},
		{"recipients new, new issue", Rules{AddRecipients: New}, true, alice, []Person{bob}, nil, []Person{bob}},
		{"recipients new, comment", Rules{AddRecipients: New}, false, alice, []Person{bob}, nil, nil},
		{"recipients no, new issue", Rules{AddRecipients: No}, true, alice, []Person{bob}, nil, nil},
		{"recipients no, comment", Rules{AddRecipients: No}, false, alice, []Person{bob}, nil, nil},

		{"assignee joins whatever the rules", Rules{AddAuthor: No, AddRecipients: No}, false, alice, []Person{bob}, ptr(dave), []Person{dave}},
		{"all three, in order", Rules{AddAuthor: Yes, AddRecipients: Yes}, false, alice, []Person{bob, carol}, ptr(dave), []Person{alice, bob, carol, dave}},
		{"author also recipient and assignee: once", Rules{AddAuthor: Yes, AddRecipients: Yes}, true, alice, []Person{bob, alice}, ptr(alice), []Person{alice, bob}},
		{"duplicate recipients", Rules{AddRecipients: Yes}, false, alice, []Person{bob, carol, bob}, ptr(carol), []Person{bob, carol}},
		{"dedup by ID, first occurrence kept", Rules{AddAuthor: Yes, AddRecipients: Yes}, false, alice,
			[]Person{{ID: 1, Address: "alice.other@example.org"}}, nil, []Person{alice}},
		{"zero IDs dedup by address, any case", Rules{AddRecipients: Yes}, false, alice,
			[]Person{{Address: "x@example.org"}, {Address: "X@Example.ORG"}}, nil, []Person{{Address: "x@example.org"}}},
		{"nobody identifiable is skipped", Rules{AddAuthor: Yes}, true, Person{}, nil, nil, nil},
		{"bouncing people join", Rules{AddAuthor: Yes, AddRecipients: Yes}, false, Person{ID: 9, Address: "b@x", Bouncing: true},
			[]Person{{ID: 8, Address: "c@x", Bouncing: true}}, nil,
			[]Person{{ID: 9, Address: "b@x", Bouncing: true}, {ID: 8, Address: "c@x", Bouncing: true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Joiners(tc.r, tc.newIssue, tc.author, tc.recipients, tc.assignee)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Joiners(%+v, %v, %v, %v, %v) (-want +got):\n%s", tc.r, tc.newIssue, tc.author, tc.recipients, tc.assignee, diff)
			}
		})
	}
}

func TestRecipients(t *testing.T) {
	cases := []struct {
		name       string
		r          Rules
		newIssue   bool
		author     Person
		nosy       []Person
		alreadyGot map[string]bool
		want       []Person
	}{
		// messages_to_author, every value.
		{"to author no: author on nosy left out", Rules{MessagesToAuthor: No}, true, alice, []Person{alice, bob}, nil, []Person{bob}},
		{"to author empty value is no", Rules{}, true, alice, []Person{alice, bob}, nil, []Person{bob}},
		{"to author unknown value is no", Rules{MessagesToAuthor: "always"}, true, alice, []Person{alice, bob}, nil, []Person{bob}},
		{"to author yes: author on nosy, first", Rules{MessagesToAuthor: Yes}, false, bob, []Person{alice, bob, carol}, nil, []Person{bob, alice, carol}},
		{"to author yes: even when not on nosy", Rules{MessagesToAuthor: Yes}, false, dave, []Person{alice}, nil, []Person{dave, alice}},
		{"to author new, new issue", Rules{MessagesToAuthor: New}, true, alice, []Person{alice, bob}, nil, []Person{alice, bob}},
		{"to author new, new issue, not on nosy", Rules{MessagesToAuthor: New}, true, dave, []Person{bob}, nil, []Person{dave, bob}},
		{"to author new, comment", Rules{MessagesToAuthor: New}, false, alice, []Person{alice, bob}, nil, []Person{bob}},
		{"to author nosy, on nosy", Rules{MessagesToAuthor: Nosy}, false, alice, []Person{bob, alice}, nil, []Person{alice, bob}},
		{"to author nosy, not on nosy", Rules{MessagesToAuthor: Nosy}, false, dave, []Person{bob, alice}, nil, []Person{bob, alice}},
		{"to author nosy, on nosy by address (zero IDs)", Rules{MessagesToAuthor: Nosy}, true, Person{Address: "Z@x"},
			[]Person{bob, {Address: "z@X"}}, nil, []Person{{Address: "Z@x"}, bob}},

		// Mail already received.
		{"already got: To/Cc left out", Rules{}, false, alice, []Person{alice, bob, carol, dave},
			map[string]bool{"bob@example.org": true, "dave@example.org": true}, []Person{carol}},
		{"already got: keys compared lowercased", Rules{}, false, alice, []Person{bob, carol},
			map[string]bool{"BOB@Example.ORG": true, "carol@example.org": true}, nil},
		{"already got: false entries ignored", Rules{}, false, alice, []Person{bob}, map[string]bool{"bob@example.org": false}, []Person{bob}},
		{"already got: author who copied themselves gets no second copy", Rules{MessagesToAuthor: Yes}, false, alice, []Person{alice, bob},
			map[string]bool{"alice@example.org": true}, []Person{bob}},

		// Bouncing and addressless.
		{"bouncing nosy member left out", Rules{}, false, alice, []Person{bob, {ID: 5, Address: "gone@x", Bouncing: true}, carol}, nil, []Person{bob, carol}},
		{"bouncing author gets no copy", Rules{MessagesToAuthor: Yes}, false, Person{ID: 5, Address: "gone@x", Bouncing: true}, []Person{bob}, nil, []Person{bob}},
		{"no address left out", Rules{}, false, alice, []Person{{ID: 6}, bob}, nil, []Person{bob}},

		// Deduplication and order.
		{"duplicate members once, order kept", Rules{}, false, alice, []Person{carol, bob, carol, dave, bob}, nil, []Person{carol, bob, dave}},
		{"two users, one mailbox: once", Rules{}, false, alice, []Person{bob, {ID: 7, Address: "BOB@example.org"}}, nil, []Person{bob}},
		{"author twice on nosy: not sent", Rules{}, false, alice, []Person{alice, bob, alice}, nil, []Person{bob}},
		{"author's address under another ID: not sent", Rules{}, false, alice, []Person{{ID: 11, Address: "Alice@example.org"}, bob}, nil, []Person{bob}},
		{"empty nosy, author no", Rules{}, true, alice, nil, nil, nil},
		{"empty nosy, author yes", Rules{MessagesToAuthor: Yes}, true, alice, nil, nil, []Person{alice}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Recipients(tc.r, tc.newIssue, tc.author, tc.nosy, tc.alreadyGot)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Recipients(%+v, %v, %v, %v, %v) (-want +got):\n%s", tc.r, tc.newIssue, tc.author, tc.nosy, tc.alreadyGot, diff)
			}
		})
	}
}

// TestJoinThenSend runs the two rules the way ingest does, with the
// defaults of config (add_author and add_recipients "yes",
// messages_to_author "no"): a new issue from alice with bob in Cc.
func TestJoinThenSend(t *testing.T) {
	r := Rules{AddAuthor: Yes, AddRecipients: Yes, MessagesToAuthor: No}
	nosyList := []Person{carol} // already subscribed by other means
	nosyList = append(nosyList, Joiners(r, true, alice, []Person{bob}, ptr(dave))...)
	got := Recipients(r, true, alice, nosyList, map[string]bool{"bob@example.org": true})
	want := []Person{carol, dave}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
}

func ExampleRecipients() {
	r := Rules{AddAuthor: Yes, AddRecipients: Yes, MessagesToAuthor: Nosy}
	nosyList := Joiners(r, true, alice, []Person{bob}, nil)
	for _, p := range Recipients(r, true, alice, nosyList, map[string]bool{"bob@example.org": true}) {
		fmt.Println(p.Address)
	}
	// Output: alice@example.org
}
