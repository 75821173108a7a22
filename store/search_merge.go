package store

import (
	"context"
	"fmt"
)

// MergeSearch does one step of merging SQLite's full-text index into one
// segment, writing about pages pages, in a transaction of its own so that
// mail keeps flowing between steps. start begins a new merge of every
// segment (FTS5's incremental optimize); later steps continue it. It
// reports whether the step found work to do: call it again until it does
// not. Every commit adds a small segment, and a search's per-issue check
// seeks in each (on 1,000,000 messages: 12 segments made a two-word search
// about twice as slow as one). PostgreSQL's GIN index needs no such care
// (autovacuum merges its pending list): there it does nothing.
func (s *Store) MergeSearch(ctx context.Context, pages int, start bool) (worked bool, err error) {
	if s.d != sqliteDialect {
		return false, nil
	}
	if pages <= 0 {
		return false, fmt.Errorf("store: merge search index: pages %d, want > 0", pages)
	}
	n := pages
	if start {
		n = -pages
	}
	err = s.Tx(ctx, func(tx *Tx) error {
		// FTS5 tells work from none by the change count: a step that
		// merged something changes it by 2 or more.
		var before, after int64
		if err := tx.get(ctx, `SELECT total_changes()`, nil, &before); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO search_fts (search_fts, rank) VALUES ('merge', $1)`, n); err != nil {
			return err
		}
		if err := tx.get(ctx, `SELECT total_changes()`, nil, &after); err != nil {
			return err
		}
		worked = after-before >= 2
		return nil
	})
	if err != nil {
		return false, fail("merge search index", err)
	}
	return worked, nil
}
