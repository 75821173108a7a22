package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// BenchmarkTxIssueWithMessage is the cost of filing one new issue: one Tx
// with the issue, its message, a nosy entry, a journal entry and an
// outbox row.
func BenchmarkTxIssueWithMessage(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d, func(b *testing.B) {
			s := storetest.Open(b, storetest.Options(b, d))
			ctx := b.Context()
			u := &store.User{Address: "bench@example.org"}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			body := strings.Repeat("Some words of a typical bug report. ", 30)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				err := s.Tx(ctx, func(tx *store.Tx) error {
					is := &store.Issue{Title: fmt.Sprintf("Issue %d", i), Status: "unread", Priority: "bug", CreatorID: u.ID, ActorID: u.ID}
					if err := tx.CreateIssue(ctx, is); err != nil {
						return err
					}
					m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: fmt.Sprintf("<b%d@example.org>", i), Content: body, FullText: body}
					if err := tx.CreateMessage(ctx, m); err != nil {
						return err
					}
					if _, err := tx.AddNosy(ctx, is.ID, u.ID); err != nil {
						return err
					}
					if err := tx.AddChange(ctx, &store.Change{IssueID: is.ID, MessageID: m.ID, ActorID: u.ID, Property: "status", New: "unread"}); err != nil {
						return err
					}
					return tx.Enqueue(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, MsgID: m.ID, Recipient: "nosy@example.org"})
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSearch is one full-text query over 1000 issues with a message
// each.
func BenchmarkSearch(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d, func(b *testing.B) {
			s := storetest.Open(b, storetest.Options(b, d))
			ctx := b.Context()
			u := &store.User{Address: "bench@example.org"}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			words := strings.Fields("gateway parser crash slow index page template cache database lock timeout relay bounce")
			err := s.Tx(ctx, func(tx *store.Tx) error {
				for i := range 1000 {
					is := &store.Issue{Title: fmt.Sprintf("%s %s", words[i%len(words)], words[(i/3)%len(words)]), Status: "unread", Priority: "bug"}
					if err := tx.CreateIssue(ctx, is); err != nil {
						return err
					}
					m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: fmt.Sprintf("<s%d@x>", i),
						Content: strings.Repeat(words[(i/7)%len(words)]+" ", 20) + fmt.Sprint("token", i)}
					if err := tx.CreateMessage(ctx, m); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.ListIssues(ctx, store.IssueFilter{Query: "crash token500", Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
