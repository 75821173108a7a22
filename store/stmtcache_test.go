package store_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/trackerd/trackerd/internal/storetest"
	"github.com/trackerd/trackerd/store"
)

// TestStatementCache: the statements a transaction prepares are prepared
// once per connection, not once per transaction. On one connection, the
// same work repeated prepares nothing new, and on PostgreSQL the server
// holds the same prepared statements for that connection throughout.
func TestStatementCache(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, o store.Options) {
		o.MaxOpenConns = 1
		st := storetest.Open(t, o)
		ctx := t.Context()
		work := func(i int) {
			t.Helper()
			err := st.Tx(ctx, func(tx *store.Tx) error {
				if _, err := tx.IssuesCreatedSince(ctx, 1, time.Now().Add(-time.Hour), 5); err != nil {
					return err
				}
				return tx.CreateUser(ctx, &store.User{Username: "u" + strconv.Itoa(i), Address: "u" + strconv.Itoa(i) + "@example.org", Roles: []string{"user"}})
			})
			if err != nil {
				t.Fatalf("transaction %d: %v", i, err)
			}
		}
		serverPrepared := func() string {
			t.Helper()
			if o.Driver != store.DriverPostgres {
				return ""
			}
			n, err := store.QueryStrings(ctx, st, `SELECT count(*) FROM pg_prepared_statements`)
			if err != nil {
				t.Fatal(err)
			}
			return n[0]
		}
		work(0)
		first, onServer := store.TxPrepares(st), serverPrepared()
		if first == 0 {
			t.Fatal("the first transaction prepared nothing: the test does not exercise the cache")
		}
		for i := 1; i <= 3; i++ {
			work(i)
			if n := store.TxPrepares(st); n != first {
				t.Fatalf("transaction %d prepared %d statements for itself, want none (the cache's)", i, n-first)
			}
			if n := serverPrepared(); n != onServer {
				t.Fatalf("transaction %d: the connection holds %s prepared statements, after the first %s", i, n, onServer)
			}
		}
	})
}
