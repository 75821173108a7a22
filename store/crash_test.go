package store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// crashEnv carries the child's store Options (JSON) from TestCrash to
// TestCrashWriter.
const crashEnv = "TRACKERD_TEST_CRASH_WRITER"

// crashCommits is how many commits the parent waits for before the kill.
const crashCommits = 300

// TestCrashWriter is the child of TestCrash, not a test of its own: in a
// loop it commits an issue with a message and an outbox row, and prints
// the issue's id after each commit, until it is killed.
func TestCrashWriter(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("run by TestCrash")
	}
	var o store.Options
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByAddress(ctx, "crash@example.org")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("A line of a message long enough to fill some pages. ", 80)
	deadline := time.Now().Add(2 * time.Minute) // if the parent died, stop anyway
	for i := 0; time.Now().Before(deadline); i++ {
		var id int64
		err := s.Tx(ctx, func(tx *store.Tx) error {
			is := &store.Issue{Title: fmt.Sprintf("crash %d", i), Status: "unread", Priority: "bug", CreatorID: u.ID, ActorID: u.ID,
				Keywords: []string{"crash"}}
			if err := tx.CreateIssue(ctx, is); err != nil {
				return err
			}
			m := &store.Message{IssueID: is.ID, AuthorID: u.ID, MessageID: fmt.Sprintf("<crash-%d-%d@example.org>", os.Getpid(), i),
				Content: body, FullText: body}
			if err := tx.CreateMessage(ctx, m); err != nil {
				return err
			}
			if _, err := tx.AddNosy(ctx, is.ID, u.ID); err != nil {
				return err
			}
			id = is.ID
			return tx.Enqueue(ctx, &store.Outbox{Kind: "notify", IssueID: is.ID, MsgID: m.ID, Recipient: "nosy@example.org"})
		})
		if err != nil {
			t.Fatal(err)
		}
		// Straight to the pipe, unbuffered: once printed, it was committed.
		if _, err := fmt.Fprintf(os.Stdout, "committed %d\n", id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrash kills a writer with SIGKILL in the middle of its work and
// checks that every commit it reported survived whole, and nothing
// half-written did (DESIGN §2.1: kill -9 at any instant loses nothing
// acknowledged).
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		ctx := t.Context()
		s, err := store.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		mustUser(t, s, "crash@example.org")
		s.Close()

		spec, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.count=1", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), crashEnv+"="+string(spec))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var printed []int64
		killed := false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			num, ok := strings.CutPrefix(sc.Text(), "committed ")
			if !ok {
				continue
			}
			id, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			printed = append(printed, id)
			if len(printed) == crashCommits && !killed {
				// SIGKILL: no deferred function, no Close, no rollback.
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		werr := cmd.Wait()
		if !killed {
			t.Fatalf("the child stopped after %d commits (%v); stderr:\n%s", len(printed), werr, stderr.String())
		}
		t.Logf("killed the writer after %d reported commits (%v)", len(printed), werr)

		s = storetest.Open(t, o)
		if o.Driver == store.DriverSQLite {
			for q, want := range map[string]string{
				`PRAGMA integrity_check`:   "ok",
				`PRAGMA foreign_key_check`: "",
			} {
				rows, err := store.QueryStrings(ctx, s, q)
				if err != nil || strings.Join(rows, "\n") != want {
					t.Errorf("%s = %q, %v; want %q", q, rows, err, want)
				}
			}
			for _, fts := range []string{"search_fts"} {
				if err := store.ExecRaw(ctx, s, `INSERT INTO `+fts+` (`+fts+`) VALUES ('integrity-check')`); err != nil {
					t.Errorf("%s integrity-check: %v", fts, err)
				}
			}
		}

		issues, err := s.ListIssues(ctx, store.IssueFilter{Sort: "id"})
		if err != nil {
			t.Fatal(err)
		}
		outbox, err := s.ListOutbox(ctx, store.OutboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		outboxOf := map[int64]int{}
		for _, ob := range outbox {
			outboxOf[ob.IssueID]++
		}
		stored := map[int64]bool{}
		for _, is := range issues {
			stored[is.ID] = true
			ms, err := s.Messages(ctx, is.ID)
			if err != nil {
				t.Fatal(err)
			}
			ns, err := s.Nosy(ctx, is.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || outboxOf[is.ID] != 1 || len(ns) != 1 || len(is.Keywords) != 1 {
				t.Errorf("issue %d is half-written: %d messages, %d outbox rows, %d nosy, keywords %q", is.ID, len(ms), outboxOf[is.ID], len(ns), is.Keywords)
			}
		}
		for _, id := range printed {
			if !stored[id] {
				t.Errorf("issue %d was reported committed but is gone", id)
			}
		}
		// At most one commit can have happened between the last print and
		// the kill.
		if len(issues) < len(printed) || len(issues) > len(printed)+1 {
			t.Errorf("%d issues stored, %d reported committed", len(issues), len(printed))
		}
		// The database takes new work.
		mustIssue(t, s, "after the crash", 0)
	})
}
