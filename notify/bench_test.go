package notify

// Benchmarks of the notifier against a real SMTP server:
//
//	go test ./notify -run '^$' -bench WorkerSmtpSink -benchtime 20000x
//
// BenchmarkWorkerSmtpSink fills the outbox with b.N notifications (a
// thousand messages on a hundred issues, five recipients each, about
// 2 KB of text each) and times Worker.Flush sending all of them to
// postfix's smtp-sink over outgoing.connections reused connections; it
// reports notifications/s.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/store"
)

// startSmtpSink runs postfix's smtp-sink on a free port until b ends and
// returns its address.
func startSmtpSink(b testing.TB) string {
	path := testenv.Command(b, "smtp-sink", "postfix")
	addr := testenv.FreePort(b)
	args := []string{"-c", addr, "1024"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("smtp-sink did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seedOutbox stores users, issues and messages and queues n notify rows,
// recipients taking turns.
func seedOutbox(b testing.TB, st *store.Store, n int) {
	ctx := context.Background()
	text := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again. ", 30)
	err := st.Tx(ctx, func(tx *store.Tx) error {
		var users []*store.User
		for i := range 500 {
			u := &store.User{Address: fmt.Sprintf("user%d@example.net", i), RealName: fmt.Sprintf("User Number %d", i), Roles: []string{"user"}}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			users = append(users, u)
		}
		var msgs []*store.Message
		for i := range 100 {
			is := &store.Issue{Title: fmt.Sprintf("Issue number %d needs fixing", i), Status: "chatting", Priority: "bug", CreatorID: users[i].ID}
			if err := tx.CreateIssue(ctx, is); err != nil {
				return err
			}
			for k := range 10 {
				m := &store.Message{IssueID: is.ID, AuthorID: users[(i+k)%500].ID, Date: time.Now(),
					MessageID: fmt.Sprintf("<m%d.%d@example.net>", i, k), Content: text, FullText: text}
				if err := tx.CreateMessage(ctx, m); err != nil {
					return err
				}
				msgs = append(msgs, m)
			}
		}
		payload, _ := json.Marshal(NotifyPayload{Changes: []string{"status: unread -> chatting"}})
		for i := range n {
			m := msgs[(i/5)%len(msgs)]
			u := users[(i*7+i/5)%500]
			if err := tx.Enqueue(ctx, &store.Outbox{Kind: KindNotify, IssueID: m.IssueID, MsgID: m.ID, Recipient: u.Address, Payload: payload}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
}

func BenchmarkWorkerSmtpSink(b *testing.B) {
	for _, driver := range storetest.Drivers {
		b.Run(driver, func(b *testing.B) {
			st := storetest.Open(b, storetest.Options(b, driver))
			addr := startSmtpSink(b)
			cfg := testConfig(b)
			cfg.Outgoing.Relay = "smtp://" + addr
			if s := os.Getenv("TRACKERD_BENCH_CONNECTIONS"); s != "" {
				fmt.Sscan(s, &cfg.Outgoing.Connections)
			}
			seedOutbox(b, st, b.N)
			s, err := NewSender(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer CloseSender(s)
			w := New(st, cfg, s, nil)
			b.ResetTimer()
			start := time.Now()
			sent, err := w.Flush(context.Background())
			took := time.Since(start)
			b.StopTimer()
			if err != nil || sent != b.N {
				b.Fatalf("Flush = %d, %v; want %d", sent, err, b.N)
			}
			b.ReportMetric(float64(sent)/took.Seconds(), "notifications/s")
		})
	}
}
