// Package nosy holds the pure rules of an issue's nosy list (DESIGN §6):
// who joins it because of a message, and who is sent the notification of a
// message. The functions take and return values only; the caller reads the
// people from the store and writes the result in the same transaction as
// the message.
//
// The rules are Roundup's (roundup/roundupdb.py nosymessage and the
// nosyreaction detector's updatenosy), with the config values of
// [nosy] add_author, add_recipients and messages_to_author.
package nosy

import "strings"

// Rule values of Rules.
const (
	Yes  = "yes"  // always
	New  = "new"  // only for the message that creates the issue
	No   = "no"   // never
	Nosy = "nosy" // MessagesToAuthor only: when the author is on the nosy list
)

// Rules mirrors config [nosy]. AddAuthor and AddRecipients are "yes", "new"
// or "no"; MessagesToAuthor is "yes", "no", "new" or "nosy". Config
// validation refuses other values; here any other value (including "")
// behaves as "no".
type Rules struct {
	AddAuthor, AddRecipients, MessagesToAuthor string
}

// Person is a user as the rules see them.
type Person struct {
	// ID is the user's id. People are the same person when their IDs are
	// equal; a zero ID (someone not stored) is compared by Address,
	// case-insensitively, instead.
	ID int64
	// Address is where the user's mail goes; "" means no mail can be sent.
	Address string
	// Bouncing is true when mail to Address has been bouncing: the user
	// stays on nosy lists but is sent nothing.
	Bouncing bool
}

// key identifies a person for deduplication.
type key struct {
	id   int64
	addr string
}

func keyOf(p Person) key {
	if p.ID != 0 {
		return key{id: p.ID}
	}
	return key{addr: strings.ToLower(p.Address)}
}

// applies reports whether a "yes"/"new"/"no" rule adds someone for a
// message that creates the issue (newIssue) or comments on it.
func applies(rule string, newIssue bool) bool {
	return rule == Yes || rule == New && newIssue
}

// Joiners returns who joins the nosy list because of one message, in this
// order, each person once (by ID, the first occurrence kept):
//
//   - the author, when AddAuthor is "yes", or "new" and newIssue;
//   - recipients, when AddRecipients is "yes", or "new" and newIssue. They
//     are the people in the mail's To and Cc as the caller resolved them:
//     the tracker's own address and its sub-addresses already taken out,
//     and only people who are users or were created for this mail;
//   - assignee, when not nil, whatever the rules.
//
// newIssue is true for the message that creates the issue. assignee is
// the person this message assigns the issue to (by subject suffix or body
// command), nil when the message does not change the assignee: as in
// Roundup's updatenosy, an assignee is added when assigned, so one who
// later left the nosy list is not pulled back by every message.
//
// The result may hold people already on the nosy list; the caller adds
// those who are not. Bouncing people join too (Recipients skips them). The
// result is nil when nobody joins.
func Joiners(r Rules, newIssue bool, author Person, recipients []Person, assignee *Person) []Person {
	var out []Person
	seen := map[key]bool{}
	add := func(p Person) {
		k := keyOf(p)
		if k == (key{}) || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, p)
	}
	if applies(r.AddAuthor, newIssue) {
		add(author)
	}
	if applies(r.AddRecipients, newIssue) {
		for _, p := range recipients {
			add(p)
		}
	}
	if assignee != nil {
		add(*assignee)
	}
	return out
}

// Recipients returns who is sent the notification of one message: the
// author first when MessagesToAuthor says so, then the nosy list in its
// order, each person and each address (case-insensitively) once, leaving
// out
//
//   - the author, unless MessagesToAuthor is "yes" (even when the author
//     is not on the nosy list), "new" and newIssue, or "nosy" and the
//     author is on nosy;
//   - whoever already received the mail itself: alreadyGot holds the
//     addresses of its To and Cc (keys in any case; they are compared
//     lowercased), as Roundup leaves out the message's recipients;
//   - people whose mail is bouncing, and people without an address.
//
// nosy is the issue's nosy list after this message's changes (Joiners,
// suffix and commands applied), so that an author who just joined counts
// as on the list for "nosy". newIssue is true for the message that creates
// the issue. The result is nil when nobody is to be sent mail.
func Recipients(r Rules, newIssue bool, author Person, nosy []Person, alreadyGot map[string]bool) []Person {
	got := make(map[string]bool, len(alreadyGot))
	for a, ok := range alreadyGot {
		if ok {
			got[strings.ToLower(a)] = true
		}
	}
	authorKey := keyOf(author)
	onNosy := false
	for _, p := range nosy {
		if authorKey != (key{}) && keyOf(p) == authorKey {
			onNosy = true
			break
		}
	}

	var out []Person
	seen := map[key]bool{}
	add := func(p Person) {
		k, addr := keyOf(p), strings.ToLower(p.Address)
		if p.Address == "" || p.Bouncing || got[addr] || seen[k] || seen[key{addr: addr}] {
			return
		}
		seen[k], seen[key{addr: addr}] = true, true
		out = append(out, p)
	}
	switch {
	case r.MessagesToAuthor == Yes,
		r.MessagesToAuthor == New && newIssue,
		r.MessagesToAuthor == Nosy && onNosy:
		add(author)
	}
	// The author is left out of the nosy loop, sent a copy or not.
	if authorKey != (key{}) {
		seen[authorKey] = true
	}
	if author.Address != "" {
		seen[key{addr: strings.ToLower(author.Address)}] = true
	}
	for _, p := range nosy {
		add(p)
	}
	return out
}
