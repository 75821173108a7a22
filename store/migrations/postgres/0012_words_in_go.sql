-- Ingest speed (issue 4): issue_words' lexemes are computed by trackerd
-- (store/words.go: runs of letters and digits, case-folded, as SQLite's
-- FTS5 and the search query split text), not by to_tsvector('simple'):
-- PostgreSQL's parser cost it ≈145 µs of CPU per benchmark mail, and it
-- kept e-mail addresses, URLs and file names whole, so that a search for
-- a word in them found nothing. The store writes an issue's row with the
-- statement that creates the issue, adds a message's words with the
-- statement that stores the message, and rewrites the row when the title
-- changes; the triggers that tokenized are gone. The rows are rebuilt
-- with the new rule after this file, in Go, in the same transaction
-- (store/migrate.go: reindexAll), which then recreates the index.
--
-- Messages are never changed or deleted by trackerd; an operator who does
-- it by hand in SQL leaves the issue's row as it was (an issue's delete
-- still removes its row).
DROP TRIGGER issue_words_issue_insert ON issues;
DROP TRIGGER issue_words_issue_retitle ON issues;
DROP TRIGGER issue_words_message_insert ON messages;
DROP TRIGGER issue_words_message_change ON messages;
DROP TRIGGER issue_words_message_delete ON messages;
DROP FUNCTION trackerd_issue_words_insert();
DROP FUNCTION trackerd_issue_words_retitle();
DROP FUNCTION trackerd_issue_words_message();
DROP FUNCTION trackerd_issue_words(BIGINT);

DROP INDEX issue_words_fts;
TRUNCATE issue_words;
