-- Ingest speed (issue 4): a new issue's lexemes are computed once, by its
-- first message. Before, the message's trigger found no issue_words row
-- for an issue of the same transaction and added nothing (yet PostgreSQL
-- could fold the to_tsvector of its UPDATE into the plan and compute it
-- anyway), and the deferred trigger read the title and every message back
-- at commit to tokenize them again. Now a message writes its issue's row
-- with the title's lexemes and its own when there is none yet, and adds
-- its own otherwise; the deferred trigger only writes the row of an issue
-- that got no message. The rows
-- hold the same lexemes as trackerd_issue_words computes (TestIssuePage
-- and TestMigrateSearchIndex compare them).
CREATE OR REPLACE FUNCTION trackerd_issue_words_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	-- Tested first, so that the full computation is not even planned for
	-- the usual issue, whose message wrote its row.
	IF NOT EXISTS (SELECT 1 FROM issue_words WHERE issue_id = NEW.id)
			AND EXISTS (SELECT 1 FROM issues WHERE id = NEW.id) THEN -- not deleted since
		INSERT INTO issue_words (issue_id, words) VALUES (NEW.id, trackerd_issue_words(NEW.id))
			ON CONFLICT (issue_id) DO NOTHING;
	END IF;
	RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION trackerd_issue_words_message() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	w tsvector;
BEGIN
	IF TG_OP = 'INSERT' THEN
		w := strip(to_tsvector('simple', left(NEW.content, 100000)));
		INSERT INTO issue_words (issue_id, words)
			SELECT i.id, strip(to_tsvector('simple', i.title)) || w FROM issues i WHERE i.id = NEW.issue_id
			ON CONFLICT (issue_id) DO UPDATE SET words = issue_words.words || w;
		RETURN NULL;
	END IF;
	UPDATE issue_words SET words = trackerd_issue_words(OLD.issue_id) WHERE issue_id = OLD.issue_id;
	IF TG_OP = 'UPDATE' AND NEW.issue_id <> OLD.issue_id THEN
		UPDATE issue_words SET words = trackerd_issue_words(NEW.issue_id) WHERE issue_id = NEW.issue_id;
	END IF;
	RETURN NULL;
END
$$;
