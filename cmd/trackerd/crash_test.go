package main

// The crash suite (issue 9): the built binary under SMTP load, killed with
// SIGKILL at a random moment, with PostgreSQL restarted under it, with the
// relay down, and as three instances on one PostgreSQL sharing one IMAP
// mailbox and one relay. Every mail answered 250 must be stored exactly
// once, the senders' retries of the rest (same Message-IDs) too, and every
// notification delivered once per recipient; the only copies allowed twice
// are the documented at-least-once resends (README "Notifications",
// "Crash window"): a mail the relay accepted whose outcome was not yet
// recorded when the process died (or the database went away).

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/internal/testdovecot"
	"github.com/trackerd/trackerd/internal/testenv"
	"github.com/trackerd/trackerd/internal/testmail"
	"github.com/trackerd/trackerd/internal/testpg"
	"github.com/trackerd/trackerd/store"
)

// crashMail is one mail of the load: the first of each connection opens
// an issue with a watcher in Cc, the others reply to it, so that each
// reply yields exactly one notification (to the watcher; the author gets
// none).
type crashMail struct {
	id, from, raw string
	watcher       string // who is notified of it; "" for the opener
}

// crashMails is the load: conns connections of perConn mails each.
func crashMails(tag string, conns, perConn int) [][]crashMail {
	out := make([][]crashMail, conns)
	for i := range out {
		from := fmt.Sprintf("%s-sender%d@example.org", tag, i)
		watcher := fmt.Sprintf("%s-watcher%d@example.org", tag, i)
		open := fmt.Sprintf("%s-open%d@crash.test", tag, i)
		out[i] = append(out[i], crashMail{id: "<" + open + ">", from: from,
			raw: msg(from, fmt.Sprintf("%s topic %d", tag, i), open, "Opening.", "Cc: "+watcher)})
		for j := 1; j < perConn; j++ {
			id := fmt.Sprintf("%s-%d.%d@crash.test", tag, i, j)
			out[i] = append(out[i], crashMail{id: "<" + id + ">", from: from, watcher: watcher,
				raw: msg(from, fmt.Sprintf("Re: %s topic %d", tag, i), id, fmt.Sprintf("Reply %d.", j), "In-Reply-To: <"+open+">")})
		}
	}
	return out
}

// crashLoad drives the mails over their connections as an MTA would: each
// mail is sent until it gets a 250; a 4xx or a broken connection means
// dial again (after 50 ms) and send the same mail again; a 5xx is a
// failure of the test.
type crashLoad struct {
	mails [][]crashMail
	// addr returns the listener connection i dials on its n-th dial.
	addr func(i, n int) string

	acked    atomic.Int64
	mu       sync.Mutex
	answered map[string]bool // Message-IDs answered 250
	tempFail int             // 4xx replies
	broken   int             // dials refused, connections cut
	permFail []string        // 5xx replies: never allowed
}

func (l *crashLoad) run(t *testing.T, timeout time.Duration) {
	t.Helper()
	l.answered = map[string]bool{}
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	for i := range l.mails {
		wg.Go(func() {
			var c *smtp.Client
			dials := 0
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for _, m := range l.mails[i] {
				for {
					if time.Now().After(deadline) {
						l.fail(fmt.Sprintf("connection %d: %s not answered 250 within %s", i, m.id, timeout))
						return
					}
					if c == nil {
						var err error
						c, err = smtp.Dial(l.addr(i, dials))
						dials++
						if err != nil {
							c = nil
							l.note(0)
							time.Sleep(50 * time.Millisecond)
							continue
						}
					}
					_, err := testmail.Send(c, m.from, []string{"tracker@localhost"}, m.raw)
					if err == nil {
						l.mu.Lock()
						l.answered[m.id] = true
						l.mu.Unlock()
						l.acked.Add(1)
						break
					}
					code := smtpCode(err)
					if code >= 500 {
						l.fail(fmt.Sprintf("connection %d: %s: %v", i, m.id, err))
						return
					}
					l.note(code)
					c.Close()
					c = nil
					time.Sleep(50 * time.Millisecond)
				}
			}
			if c != nil {
				_ = c.Quit()
			}
		})
	}
	wg.Wait()
	for _, f := range l.permFail {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func (l *crashLoad) note(code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if code == 0 {
		l.broken++
	} else {
		l.tempFail++
	}
}

func (l *crashLoad) fail(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.permFail = append(l.permFail, s)
}

// total is the number of mails of the load.
func (l *crashLoad) total() int {
	n := 0
	for _, c := range l.mails {
		n += len(c)
	}
	return n
}

// openDB opens the store's database for the checks, in SQL.
func (e *cliEnv) openDB(t *testing.T) *sql.DB {
	t.Helper()
	driver := "sqlite"
	if e.opts.Driver == "postgres" {
		driver = "postgres"
	}
	db, err := sql.Open(driver, e.opts.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkStored: every mail of the load is stored exactly once, each
// connection's mails on the issue its opener opened, and nothing else
// (extra mails, e.g. polled ones, are listed in extra: Message-ID, once
// each).
func checkStored(t *testing.T, db *sql.DB, l *crashLoad, extra []string) {
	t.Helper()
	rows, err := db.Query("SELECT message_id, issue_id FROM messages")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count := map[string]int{}
	issueOf := map[string]int64{}
	for rows.Next() {
		var id string
		var issue int64
		if err := rows.Scan(&id, &issue); err != nil {
			t.Fatal(err)
		}
		count[id]++
		issueOf[id] = issue
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, id := range extra {
		want[id] = true
	}
	bad := 0
	for i, conn := range l.mails {
		for _, m := range conn {
			want[m.id] = true
			if issueOf[m.id] != issueOf[conn[0].id] {
				t.Errorf("connection %d: %s filed on issue %d, its opener on %d", i, m.id, issueOf[m.id], issueOf[conn[0].id])
			}
		}
	}
	for id := range want {
		if count[id] != 1 {
			if bad++; bad <= 20 {
				t.Errorf("%s stored %d times, want once (answered 250: %v)", id, count[id], l.answered[id])
			}
		}
	}
	for id, n := range count {
		if !want[id] {
			t.Errorf("unexpected message %s stored %d times", id, n)
		}
	}
	if bad > 20 {
		t.Errorf("... %d mails in all not stored exactly once", bad)
	}
	var filed int
	if err := db.QueryRow("SELECT count(*) FROM inbound WHERE status = 'filed'").Scan(&filed); err != nil {
		t.Fatal(err)
	}
	if filed != len(want) {
		t.Errorf("%d inbound rows filed, want %d", filed, len(want))
	}
}

// notifyKey is one notification: its recipient and Message-ID.
type notifyKey struct{ to, id string }

// unrecorded returns the notifications whose outbox row is not recorded
// as sent: read right after a kill, before anything runs again.
func unrecorded(t *testing.T, db *sql.DB) map[notifyKey]bool {
	t.Helper()
	rows, err := db.Query("SELECT o.recipient, m.message_id FROM outbox o JOIN messages m ON m.id = o.msg_id WHERE o.status <> 'sent'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[notifyKey]bool{}
	for rows.Next() {
		var k notifyKey
		if err := rows.Scan(&k.to, &k.id); err != nil {
			t.Fatal(err)
		}
		k.to = strings.ToLower(k.to)
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// acceptedKeys counts the relay's accepted mails by notification.
func acceptedKeys(s *relaySink) map[notifyKey]int {
	out := map[notifyKey]int{}
	for _, m := range s.mails() {
		out[notifyKey{strings.ToLower(m.to), m.header("Message-ID")}]++
	}
	return out
}

// waitOutboxSent waits until the outbox holds want rows, all sent.
func waitOutboxSent(t *testing.T, db *sql.DB, want int, d time.Duration) {
	t.Helper()
	var total, sent int
	deadline := time.Now().Add(d)
	for {
		err := db.QueryRow("SELECT count(*), coalesce(sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) FROM outbox").Scan(&total, &sent)
		if err == nil && total == want && sent == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox: %d rows, %d sent after %s; want %d, all sent (last error %v)", total, sent, d, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkNotified: every reply of the load was notified to its watcher, and
// only those; a notification may have been accepted twice only if mayResend
// says so (it was accepted and not recorded as sent when the process
// died), never more.
func checkNotified(t *testing.T, s *relaySink, l *crashLoad, mayResend func(notifyKey) bool) (resent int) {
	t.Helper()
	got := acceptedKeys(s)
	want := 0
	bad := 0
	for _, conn := range l.mails {
		for _, m := range conn {
			if m.watcher == "" {
				continue
			}
			want++
			k := notifyKey{m.watcher, m.id}
			n := got[k]
			switch {
			case n == 1:
			case n == 2 && mayResend != nil && mayResend(k):
				resent++
			default:
				if bad++; bad <= 20 {
					t.Errorf("%s got %s %d times, want once", k.to, k.id, n)
				}
			}
		}
	}
	if len(got) != want {
		t.Errorf("the relay accepted %d distinct notifications, want %d", len(got), want)
	}
	return resent
}

// crashConfig writes e's config for serve with the listener on addr, the
// relay sink, limits out of the way (one sender writes hundreds of mails
// to one issue in seconds), and extra TOML.
func crashConfig(t *testing.T, e *cliEnv, addr, relay, extra string) {
	t.Helper()
	var st string
	if e.opts.Driver == "postgres" {
		st = fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = %q\n", e.opts.DSN)
	}
	writeConfig(t, e.config, fmt.Sprintf(`%s[smtp]
listen = %q
max_connections_per_ip = 100
max_connections_per_ip_minute = 100000
[web]
listen = ""
[mailgw]
loop_max_mails = 1000000
max_new_issues_per_sender_hour = 0
[outgoing]
relay = "smtp://%s"
connections = 4
claim_lease = "2s"
%s`, st, addr, relay, extra))
}

// TestCrashSMTPKill: 2,000 mails over 10 connections; serve is killed
// with SIGKILL at a random moment of the load and started again on the
// same port; the senders retry what was not answered 250.
func TestCrashSMTPKill(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		sink := newRelaySink(t, "")
		addr := testenv.FreePort(t)
		crashConfig(t, e, addr, sink.addr, "")
		l := &crashLoad{mails: crashMails("kill", 10, 200), addr: func(int, int) string { return addr }}
		srv := startSMTP(t, e, addr)
		killAt := int64(300 + rand.IntN(1400))
		var resendable map[notifyKey]bool
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			for l.acked.Load() < killAt {
				time.Sleep(time.Millisecond)
			}
			srv.kill(t)
		}()
		loadDone := make(chan struct{})
		go func() {
			defer close(loadDone)
			<-killed
			db := e.openDB(t)
			time.Sleep(200 * time.Millisecond) // a DATA the sink was reading when the client died
			accepted := acceptedKeys(sink)
			resendable = map[notifyKey]bool{}
			for k := range unrecorded(t, db) {
				if accepted[k] > 0 {
					resendable[k] = true
				}
			}
			t.Logf("killed after %d mails answered 250 (aimed at %d); %d notifications accepted and not recorded", l.acked.Load(), killAt, len(resendable))
			startSMTP(t, e, addr)
		}()
		l.run(t, 3*time.Minute)
		<-loadDone
		t.Logf("load done: %d temporary failures, %d broken connections or refused dials", l.tempFail, l.broken)
		if len(l.answered) != l.total() {
			t.Fatalf("%d mails answered 250, want %d", len(l.answered), l.total())
		}
		db := e.openDB(t)
		checkStored(t, db, l, nil)
		waitOutboxSent(t, db, l.total()-len(l.mails), 2*time.Minute)
		resent := checkNotified(t, sink, l, func(k notifyKey) bool { return resendable[k] })
		t.Logf("%d notifications resent after the kill", resent)
	})
}

// TestCrashPostgresRestart: PostgreSQL is stopped (immediate: every
// connection cut) in the middle of the load and started again 3 s later;
// serve keeps running. During the outage the listener answers only 4xx;
// afterwards every mail is stored once and every notification sent,
// without restarting trackerd.
func TestCrashPostgresRestart(t *testing.T) {
	pg := testpg.Start(t)
	dsn := freshDatabase(t, pg.DSN)
	dir := t.TempDir()
	e := &cliEnv{dir: dir, config: filepath.Join(dir, "trackerd.toml"), opts: store.Options{Driver: "postgres", DSN: dsn}}
	sink := newRelaySink(t, "")
	addr := testenv.FreePort(t)
	crashConfig(t, e, addr, sink.addr, "")
	startSMTP(t, e, addr)
	l := &crashLoad{mails: crashMails("pgrestart", 10, 100), addr: func(int, int) string { return addr }}
	var back map[notifyKey]int // accepted by the relay before the server was back
	outage := make(chan struct{})
	go func() {
		defer close(outage)
		for l.acked.Load() < 300 {
			time.Sleep(time.Millisecond)
		}
		pg.Stop(t)
		l.mu.Lock()
		before := l.tempFail
		l.mu.Unlock()
		time.Sleep(3 * time.Second)
		l.mu.Lock()
		during := l.tempFail - before
		l.mu.Unlock()
		back = acceptedKeys(sink)
		pg.Start(t)
		t.Logf("PostgreSQL down for 3s after %d mails answered 250; %d 4xx answers meanwhile", l.acked.Load(), during)
		if during == 0 {
			t.Errorf("no 4xx answer while PostgreSQL was down")
		}
	}()
	l.run(t, 3*time.Minute)
	<-outage
	if l.broken != 0 {
		t.Errorf("%d connections refused or cut; trackerd should have stayed up and answered 4xx", l.broken)
	}
	db := e.openDB(t)
	checkStored(t, db, l, nil)
	waitOutboxSent(t, db, l.total()-len(l.mails), 2*time.Minute)
	// A notification sent while the database went away may be sent again,
	// its outcome not recorded: the same at-least-once rule as a crash.
	resent := checkNotified(t, sink, l, func(k notifyKey) bool { return back[k] > 0 })
	t.Logf("%d notifications resent after the outage", resent)
}

// TestCrashRelayDown: the relay refuses connections during a load of 200
// mails; every notification waits in the outbox (pending, the cause
// named); once the relay is back, each is delivered exactly once.
func TestCrashRelayDown(t *testing.T) {
	forEachDriver(t, func(t *testing.T, e *cliEnv) {
		relayAddr := testenv.FreePort(t) // nobody listens there yet
		addr := testenv.FreePort(t)
		crashConfig(t, e, addr, relayAddr, "")
		srv := startSMTP(t, e, addr)
		defer func() {
			if t.Failed() {
				t.Logf("serve's log:\n%s", srv.stderr.String())
			}
		}()
		l := &crashLoad{mails: crashMails("relaydown", 10, 20), addr: func(int, int) string { return addr }}
		l.run(t, 2*time.Minute)
		db := e.openDB(t)
		checkStored(t, db, l, nil)
		want := l.total() - len(l.mails)
		var total, pending int
		// Every row queued, tried (its error names the relay), and none
		// held by serve's notifier any more (it paused and gave them back).
		waitUntil(t, "every notification queued and tried", func() bool {
			err := db.QueryRow("SELECT count(*), coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) FROM outbox").Scan(&total, &pending)
			var named, held int
			if err == nil {
				err = db.QueryRow(query("SELECT count(*) FROM outbox WHERE last_error LIKE ?").Replace(e.opts.Driver), "%"+relayAddr+"%").Scan(&named)
			}
			if err == nil {
				err = db.QueryRow("SELECT count(*) FROM outbox WHERE claimed_until IS NOT NULL").Scan(&held)
			}
			return err == nil && total == want && pending == want && named > 0 && held == 0
		})
		sink := newRelaySink(t, relayAddr)
		// The rows are due again after the backoff (a minute); the
		// operator's `outbox retry` sends them now, while serve runs: the
		// two processes' claims must not send any twice.
		out := e.mustRun(t, "outbox", "retry", "-status", "pending")
		// serve may have sent a few itself meanwhile (the relay is back).
		var queued int
		if _, err := fmt.Sscanf(out, "queued %d rows again", &queued); err != nil || queued == 0 || queued > want {
			t.Errorf("outbox retry: %q", out)
		}
		waitOutboxSent(t, db, want, 2*time.Minute)
		checkNotified(t, sink, l, nil)
		if n := len(sink.mails()); n != want {
			t.Errorf("the relay accepted %d mails, want %d", n, want)
		}
	})
}

// query is SQL with ? placeholders; Replace numbers them for PostgreSQL.
type query string

func (q query) Replace(driver string) string {
	if driver != "postgres" {
		return string(q)
	}
	s, n := string(q), 0
	var b strings.Builder
	for _, r := range s {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestCrashThreeInstances: three `serve` on one PostgreSQL database, each
// with its own listener and data directory, all polling one IMAP mailbox
// (IDLE) and sending through one relay. SMTP senders spread over the
// three and fail over to the next on a broken connection; 150 mails are
// put into the mailbox in three batches. The instance polling the
// mailbox is killed with SIGKILL midway. Every acknowledged and every
// polled mail is filed exactly once, the mailbox is emptied (the lock is
// taken over), and every notification is delivered once (modulo the
// documented resend of the killed instance's unrecorded ones).
func TestCrashThreeInstances(t *testing.T) {
	dsn := freshDatabase(t, storetest.PostgresDSN(t))
	d := testdovecot.Start(t, testdovecot.Options{})
	sink := newRelaySink(t, "")
	var envs []*cliEnv
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		e := &cliEnv{dir: dir, config: filepath.Join(dir, "trackerd.toml"), opts: store.Options{Driver: "postgres", DSN: dsn}}
		pw := e.passwordFile(t, "secret")
		addr := testenv.FreePort(t)
		crashConfig(t, e, addr, sink.addr, fmt.Sprintf(`
[[poll]]
name = "shared"
url = "imap://tracker@%s"
password_file = %q
idle = true
`, d.IMAP, pw))
		envs, addrs = append(envs, e), append(addrs, addr)
	}
	polled := testmail.Fresh(150, "three")
	var pollIDs []string
	for i := range polled {
		pollIDs = append(pollIDs, fmt.Sprintf("<three-%d@example.org>", i))
	}
	d.Append(t, "tracker", "INBOX", polled[:50]...)
	srvs := make([]*smtpServe, 3)
	for i, e := range envs {
		srvs[i] = startSMTP(t, e, addrs[i])
	}
	// The instance that polls the mailbox: it logs its IDLE.
	poller := -1
	waitUntil(t, "one instance polling the mailbox", func() bool {
		for i, s := range srvs {
			if strings.Contains(s.stderr.String(), `msg="polling with IDLE" mailbox=shared`) {
				poller = i
				return true
			}
		}
		return false
	})
	dead := atomic.Int32{}
	dead.Store(-1)
	l := &crashLoad{mails: crashMails("three", 6, 80), addr: func(i, n int) string {
		a := (i + n) % 3
		if int32(a) == dead.Load() {
			a = (a + 1) % 3
		}
		return addrs[a]
	}}
	killed := make(chan struct{})
	var resendable map[notifyKey]bool
	go func() {
		defer close(killed)
		for l.acked.Load() < 160 {
			time.Sleep(time.Millisecond)
		}
		d.Append(t, "tracker", "INBOX", polled[50:100]...)
		time.Sleep(200 * time.Millisecond) // the poller is filing them
		srvs[poller].kill(t)
		dead.Store(int32(poller))
		db := envs[0].openDB(t)
		time.Sleep(200 * time.Millisecond)
		accepted := acceptedKeys(sink)
		resendable = map[notifyKey]bool{}
		for k := range unrecorded(t, db) {
			if accepted[k] > 0 {
				resendable[k] = true
			}
		}
		t.Logf("killed instance %d (the poller) after %d mails answered 250", poller, l.acked.Load())
		d.Append(t, "tracker", "INBOX", polled[100:]...)
	}()
	l.run(t, 3*time.Minute)
	<-killed
	t.Logf("load done: %d temporary failures, %d broken connections or refused dials", l.tempFail, l.broken)
	db := envs[0].openDB(t)
	pollWait(t, 2*time.Minute, "every polled mail filed and the mailbox emptied", func() bool {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil || n < l.total()+len(polled) {
			return false
		}
		total, _ := d.Count(t, "tracker", "INBOX")
		return total == 0
	})
	checkStored(t, db, l, pollIDs)
	waitOutboxSent(t, db, l.total()-len(l.mails), 2*time.Minute)
	resent := checkNotified(t, sink, l, func(k notifyKey) bool { return resendable[k] })
	t.Logf("%d notifications resent after the kill", resent)
}
