package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestMergeSearchLoop: serve's merger brings SQLite's index to one segment
// on its schedule and stops with its context.
func TestMergeSearchLoop(t *testing.T) {
	o := storetest.Options(t, store.DriverSQLite)
	st := storetest.Open(t, o)
	raw, err := sql.Open("sqlite", o.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := t.Context()
	u := &store.User{Address: "a@example.org"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		err := st.Tx(ctx, func(tx *store.Tx) error {
			is := &store.Issue{Title: fmt.Sprintf("t%d", i), Status: "unread", Priority: "bug"}
			if err := tx.CreateIssue(ctx, is); err != nil {
				return err
			}
			return tx.CreateMessage(ctx, &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: fmt.Sprintf("<%d@x>", i), Content: "words"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	segments := func() string {
		var n string
		if err := raw.QueryRowContext(ctx, `SELECT count(DISTINCT segid) FROM search_fts_idx`).Scan(&n); err != nil {
			t.Fatalf("segments: %v", err)
		}
		return n
	}
	if segments() == "1" {
		t.Fatal("one segment before the merger ran: nothing to test")
	}
	defer func(f, e, p time.Duration) { searchMergeFirst, searchMergeEvery, searchMergePause = f, e, p }(searchMergeFirst, searchMergeEvery, searchMergePause)
	searchMergeFirst, searchMergeEvery, searchMergePause = time.Millisecond, time.Hour, time.Millisecond
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mergeSearchLoop(loopCtx, st, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(10 * time.Second)
	for segments() != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("still %s segments after 10 s", segments())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mergeSearchLoop = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mergeSearchLoop did not stop with its context")
	}
}
