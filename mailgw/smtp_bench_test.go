package mailgw

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/config"
	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/store"
)

// BenchmarkSMTPListener sends b.N mails of 4 KB, each a new issue as
// postfix's smtp-source sends them, over 20 concurrent sessions to the
// listener in process, on SQLite (durable commits) and on PostgreSQL:
//
//	scripts/with-postgres.sh go test ./mailgw -run '^$' -bench SMTPListener -benchtime 5000x
//
// The whole-process figures, beside a bare go-smtp server, come from
// scripts/bench-smtp.sh.
func BenchmarkSMTPListener(b *testing.B) {
	for _, driver := range storetest.Drivers {
		b.Run(driver, func(b *testing.B) {
			st := storetest.Open(b, storetest.Options(b, driver))
			tl := startListener(b, st, func(c *config.Config) {
				c.SMTP.MaxConnectionsPerIP = 100
				c.MailGW.MaxNewIssuesPerSenderHour = 0 // one sender opens every issue: no limit
				c.Log.Level = "warn"
			})
			body := strings.Repeat(strings.Repeat("X", 78)+"\r\n", 51)
			const sessions = 20
			var next atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for range sessions {
				wg.Go(func() {
					c, err := smtp.Dial(tl.addr)
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						raw := fmt.Sprintf("From: <bench@example.org>\r\nTo: <tracker@localhost>\r\nMessage-Id: <%d.bench@client.example.org>\r\nSubject: bench mail\r\n\r\n%s", i, body)
						if _, err := testmail.Send(c, "bench@example.org", []string{"tracker@localhost"}, raw); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
			b.StopTimer()
			if n, err := st.CountIssues(b.Context(), store.IssueFilter{}); err != nil || n != b.N {
				b.Errorf("%d issues (%v), want %d", n, err, b.N)
			}
		})
	}
}
