-- Issue 7: the full-text index is kept per issue, so that a search finds
-- issues without visiting one message row per hit. issue_words holds the
-- lexemes (no positions) of an issue's title and of the first 100,000
-- characters of each of its messages, with the 'simple' configuration as
-- before. Its rows stay narrow (toast_tuple_target: the lexemes live in
-- the TOAST table), so a GIN hit costs a small heap visit. Triggers keep
-- it in step: a new issue's row is written at commit; a new message adds
-- its lexemes to its issue's row (an issue created in the same
-- transaction has none yet); a changed title, a changed or deleted message
-- rebuilds the issue's row. It replaces the GIN
-- indexes on issue titles and message contents.
CREATE TABLE issue_words (
	issue_id BIGINT   PRIMARY KEY, -- no foreign key: its check would cost every new issue; see issue_words_issue_delete
	words    tsvector NOT NULL
) WITH (toast_tuple_target = 128);

-- trackerd_issue_words computes an issue's row from scratch.
CREATE FUNCTION trackerd_issue_words(issue BIGINT) RETURNS tsvector LANGUAGE sql STABLE AS $$
	SELECT strip(to_tsvector('simple', COALESCE((SELECT title FROM issues WHERE id = issue), '')))
		|| COALESCE((SELECT array_to_tsvector(array_agg(DISTINCT u.lexeme))
			FROM messages m CROSS JOIN LATERAL unnest(to_tsvector('simple', left(m.content, 100000))) u
			WHERE m.issue_id = issue), ''::tsvector)
$$;

-- The existing issues, in one pass over the messages: the same value as
-- trackerd_issue_words per issue (TestMigrateSearchIndex), without a
-- query per issue.
INSERT INTO issue_words (issue_id, words)
SELECT i.id, strip(to_tsvector('simple', i.title)) || COALESCE(w.words, ''::tsvector)
FROM issues i LEFT JOIN (
	SELECT m.issue_id, array_to_tsvector(array_agg(DISTINCT u.lexeme)) AS words
	FROM messages m CROSS JOIN LATERAL unnest(to_tsvector('simple', left(m.content, 100000))) u
	GROUP BY m.issue_id) w ON w.issue_id = i.id;
CREATE INDEX issue_words_fts ON issue_words USING GIN (words);
-- The search plan reads the lexeme statistics (store: pgSearchPlan).
ANALYZE issue_words;

-- A new issue's row is written once, when its transaction commits, with
-- its title and the messages filed with it (a deferred trigger): written
-- at once, it would be written again by the issue's first message.
CREATE FUNCTION trackerd_issue_words_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO issue_words (issue_id, words) SELECT NEW.id, trackerd_issue_words(NEW.id)
		WHERE EXISTS (SELECT 1 FROM issues WHERE id = NEW.id) -- not deleted since
		ON CONFLICT (issue_id) DO NOTHING;
	RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER issue_words_issue_insert AFTER INSERT ON issues
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION trackerd_issue_words_insert();

CREATE FUNCTION trackerd_issue_words_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM issue_words WHERE issue_id = OLD.id;
	RETURN NULL;
END
$$;
CREATE TRIGGER issue_words_issue_delete AFTER DELETE ON issues
	FOR EACH ROW EXECUTE FUNCTION trackerd_issue_words_delete();

CREATE FUNCTION trackerd_issue_words_retitle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE issue_words SET words = trackerd_issue_words(NEW.id) WHERE issue_id = NEW.id;
	RETURN NULL;
END
$$;
CREATE TRIGGER issue_words_issue_retitle AFTER UPDATE OF title ON issues
	FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title)
	EXECUTE FUNCTION trackerd_issue_words_retitle();

CREATE FUNCTION trackerd_issue_words_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE issue_words SET words = words || strip(to_tsvector('simple', left(NEW.content, 100000)))
			WHERE issue_id = NEW.issue_id;
		RETURN NULL;
	END IF;
	UPDATE issue_words SET words = trackerd_issue_words(OLD.issue_id) WHERE issue_id = OLD.issue_id;
	IF TG_OP = 'UPDATE' AND NEW.issue_id <> OLD.issue_id THEN
		UPDATE issue_words SET words = trackerd_issue_words(NEW.issue_id) WHERE issue_id = NEW.issue_id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER issue_words_message_insert AFTER INSERT ON messages
	FOR EACH ROW EXECUTE FUNCTION trackerd_issue_words_message();
CREATE TRIGGER issue_words_message_change AFTER UPDATE OF content, issue_id ON messages
	FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.issue_id IS DISTINCT FROM NEW.issue_id)
	EXECUTE FUNCTION trackerd_issue_words_message();
CREATE TRIGGER issue_words_message_delete AFTER DELETE ON messages
	FOR EACH ROW EXECUTE FUNCTION trackerd_issue_words_message();

DROP INDEX issues_title_fts;
DROP INDEX messages_content_fts;
