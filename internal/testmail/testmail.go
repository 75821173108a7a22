// Package testmail generates realistic tracker mail for tests and
// benchmarks.
package testmail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Archive generates n mails shaped like a tracker's traffic: about 30%
// open a new issue, the rest reply to a recent one by designator and
// In-Reply-To, quoting it; a pool of people gives nosy lists of about
// five; one mail in ten carries a small attachment, one in ten is
// HTML-only. Bodies average about 4 KB. The same seed gives the same
// archive.
func Archive(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := strings.Fields(`the printer crashes when a job is sent from the laptop after the update and the log shows
		a timeout in the driver which we could not reproduce on the other machine so please check the
		configuration of the queue and tell us whether the patch from last week fixes it for you too`)
	para := func() string {
		var b strings.Builder
		for i := 0; i < 110+rng.IntN(90); i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String() + "."
	}
	people := make([]string, 40)
	for i := range people {
		people[i] = fmt.Sprintf("Person %d <person%d@example.org>", i, i)
	}
	type thread struct {
		id    int
		title string
		last  string
		team  []string
	}
	var threads []thread
	out := make([][]byte, 0, n)
	for i := range n {
		var b bytes.Buffer
		date := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
		id := fmt.Sprintf("gen%d.%d@example.org", seed, i)
		var from, subject, irt string
		var cc []string
		if len(threads) == 0 || rng.IntN(10) < 3 {
			th := thread{id: len(threads) + 1, title: fmt.Sprintf("Problem %d with %s", i, words[rng.IntN(len(words))])}
			for range 4 {
				th.team = append(th.team, people[rng.IntN(len(people))])
			}
			from, subject = th.team[0], th.title
			cc = th.team[1:3]
			th.last = id
			threads = append(threads, th)
		} else {
			k := len(threads) - 1 - rng.IntN(min(len(threads), 20))
			th := &threads[k]
			from = th.team[rng.IntN(len(th.team))]
			if rng.IntN(4) == 0 {
				from = people[rng.IntN(len(people))]
				th.team = append(th.team, from)
			}
			subject = fmt.Sprintf("Re: [issue%d] %s", th.id, th.title)
			irt = th.last
			th.last = id
		}
		fmt.Fprintf(&b, "From: %s\nTo: Tracker <tracker@localhost>\n", from)
		if len(cc) > 0 {
			fmt.Fprintf(&b, "Cc: %s\n", strings.Join(cc, ", "))
		}
		fmt.Fprintf(&b, "Subject: %s\nMessage-ID: <%s>\nDate: %s\nMIME-Version: 1.0\n", subject, id, date.Format(time.RFC1123Z))
		if irt != "" {
			fmt.Fprintf(&b, "In-Reply-To: <%s>\nReferences: <%s>\n", irt, irt)
		}
		text := para() + "\n\n" + para() + "\n\n" + para() + "\n\n" + para() + "\n"
		if irt != "" {
			text += "\nOn " + date.Format(time.RFC1123Z) + ", someone wrote:\n> " + strings.ReplaceAll(para(), ". ", ".\n> ") + "\n"
		}
		switch rng.IntN(10) {
		case 0: // attachment
			att := make([]byte, 2048+rng.IntN(4096))
			for j := range att {
				att[j] = byte(rng.IntN(256))
			}
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\nContent-Type: text/plain; charset=utf-8\n\n%s\n--b%d\n", i, i, text, i)
			fmt.Fprintf(&b, "Content-Type: application/octet-stream; name=\"dump%d.bin\"\nContent-Disposition: attachment; filename=\"dump%d.bin\"\nContent-Transfer-Encoding: base64\n\n", i, i)
			enc := base64.StdEncoding.EncodeToString(att)
			for len(enc) > 76 {
				b.WriteString(enc[:76] + "\n")
				enc = enc[76:]
			}
			fmt.Fprintf(&b, "%s\n--b%d--\n", enc, i)
		case 1: // HTML only
			html := "<html><body><p>" + strings.ReplaceAll(strings.TrimSpace(text), "\n\n", "</p><p>") + "</p></body></html>"
			fmt.Fprintf(&b, "Content-Type: text/html; charset=utf-8\n\n%s\n", html)
		default:
			fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\n\n%s", text)
		}
		out = append(out, b.Bytes())
	}
	return out
}

// Mbox returns mails as one mbox file, with mboxrd escaping (a body line
// "From …", quoted or not, gains a ">").
func Mbox(mails [][]byte) []byte {
	var b bytes.Buffer
	for _, m := range mails {
		b.WriteString("From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n")
		for _, line := range bytes.SplitAfter(m, []byte("\n")) {
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				b.WriteByte('>')
			}
			b.Write(line)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// Fresh returns n mails that each open a new issue, from senders of their
// own (named after tag): mails that can be filed in any order, by pollers
// or instances running at once.
func Fresh(n int, tag string) [][]byte {
	ms := make([][]byte, n)
	for i := range ms {
		ms[i] = []byte(fmt.Sprintf("From: Sender %[1]s %[2]d <%[1]s-%[2]d@example.org>\r\nTo: tracker@localhost\r\n"+
			"Subject: %[1]s problem %[2]d\r\nMessage-ID: <%[1]s-%[2]d@example.org>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n"+
			"Something is wrong with %[1]s number %[2]d.\r\n", tag, i))
	}
	return ms
}
