-- Idempotent ingest (DESIGN §2.2): one row per (Message-ID, author) that was
-- filed, whether or not it left a message (a mail whose text is empty after
-- stripping only changes properties). A second delivery of the same mail
-- finds its row and is acknowledged without being filed again.
CREATE TABLE filed (
	message_id TEXT    NOT NULL,
	author_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	issue_id   INTEGER REFERENCES issues (id) ON DELETE SET NULL,
	msg_id     INTEGER REFERENCES messages (id) ON DELETE SET NULL,
	at         INTEGER NOT NULL,
	PRIMARY KEY (message_id, author_id)
) STRICT;

-- Title matching (mailgw.subject_content_match) looks issues up by title.
CREATE INDEX issues_title ON issues (lower(title));
