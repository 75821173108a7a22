-- Idempotent ingest (DESIGN §2.2): see the SQLite file.
CREATE TABLE filed (
	message_id TEXT        NOT NULL,
	author_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	issue_id   BIGINT      REFERENCES issues (id) ON DELETE SET NULL,
	msg_id     BIGINT      REFERENCES messages (id) ON DELETE SET NULL,
	at         TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (message_id, author_id)
);

CREATE INDEX issues_title ON issues (lower(title));
