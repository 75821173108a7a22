package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/trackerd/trackerd/store"
)

// Merging SQLite's search index (store.MergeSearch): the first pass some
// minutes after start, then one a day; each pass works in steps of
// searchMergePages pages (a few milliseconds each) with a pause between
// them, so that mail is filed in between.
var (
	searchMergeFirst = 10 * time.Minute
	searchMergeEvery = 24 * time.Hour
	searchMergePause = 20 * time.Millisecond
)

const searchMergePages = 500

// searchComponents is the index merger, on SQLite only.
func searchComponents(env *serveEnv) ([]component, error) {
	if env.st.Driver() != store.DriverSQLite {
		return nil, nil
	}
	return []component{{name: "search-index", run: func(ctx context.Context) error {
		return mergeSearchLoop(ctx, env.st, env.log)
	}}}, nil
}

// mergeSearchLoop runs merge passes until ctx ends. A failed pass is
// logged and tried again at the next one: search stays correct, only
// slower.
func mergeSearchLoop(ctx context.Context, st *store.Store, log *slog.Logger) error {
	wait := searchMergeFirst
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = searchMergeEvery
		start, steps := time.Now(), 0
		err := func() error {
			for first := true; ; first = false {
				worked, err := st.MergeSearch(ctx, searchMergePages, first)
				if err != nil || !worked {
					return err
				}
				steps++
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(searchMergePause):
				}
			}
		}()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("merging the search index failed; trying again at the next pass", "err", err)
			continue
		}
		log.Info("search index merged", "steps", steps, "took", time.Since(start).Round(time.Millisecond).String())
	}
}
