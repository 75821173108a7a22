-- Ingest speed (issue 4): PostgreSQL's search words are now computed by
-- trackerd (store/words.go) by the rule SQLite's FTS5 tokenizer already
-- follows. SQLite needs no change; the file keeps the two dialects'
-- migrations numbered alike.
SELECT 1;
