-- trackerd schema version 1, SQLite.
--
-- Conventions (the PostgreSQL file mirrors this one table for table):
--   * times are INTEGER Unix microseconds, UTC;
--   * booleans are INTEGER 0/1;
--   * ids are INTEGER PRIMARY KEY AUTOINCREMENT, so a number is never
--     reused, like PostgreSQL identity columns (an issue number, once
--     mailed, must never name another issue);
--   * tables are STRICT: a value of the wrong type is an error, not a
--     silent conversion;
--   * ON DELETE: rows that belong to a parent go with it (CASCADE); links
--     to something optional become NULL (SET NULL); authorship (creator,
--     actor, author) blocks the delete, because history must not vanish.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	username      TEXT    NOT NULL,
	username_lower TEXT   NOT NULL UNIQUE, -- usernames are unique without regard to case
	realname      TEXT    NOT NULL DEFAULT '',
	roles         TEXT    NOT NULL DEFAULT '', -- comma-separated
	password_hash TEXT    NOT NULL DEFAULT '',
	bouncing      INTEGER NOT NULL DEFAULT 0 CHECK (bouncing IN (0, 1)),
	bounce_count  INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL
) STRICT;

-- Every address of every user, primary and alternates, in one table: the
-- unique address_lower makes addresses case-insensitively unique across
-- both kinds.
CREATE TABLE addresses (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	address       TEXT    NOT NULL,
	address_lower TEXT    NOT NULL UNIQUE,
	is_primary    INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX addresses_one_primary ON addresses (user_id) WHERE is_primary;
CREATE INDEX addresses_user ON addresses (user_id);

CREATE TABLE issues (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	title         TEXT    NOT NULL,
	status        TEXT    NOT NULL,
	priority      TEXT    NOT NULL,
	assignee_id   INTEGER REFERENCES users (id) ON DELETE SET NULL,
	superseder_id INTEGER REFERENCES issues (id) ON DELETE SET NULL,
	created       INTEGER NOT NULL,
	activity      INTEGER NOT NULL,
	creator_id    INTEGER REFERENCES users (id),
	actor_id      INTEGER REFERENCES users (id)
) STRICT;
CREATE INDEX issues_activity ON issues (activity);
CREATE INDEX issues_status ON issues (status, activity);
CREATE INDEX issues_assignee ON issues (assignee_id);

CREATE TABLE issue_keywords (
	issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
	keyword  TEXT    NOT NULL,
	PRIMARY KEY (issue_id, keyword)
) STRICT, WITHOUT ROWID;
CREATE INDEX issue_keywords_keyword ON issue_keywords (keyword);

CREATE TABLE nosy (
	issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
	user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (issue_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX nosy_user ON nosy (user_id);

-- The raw archive: every mail as it arrived, byte for byte.
CREATE TABLE inbound (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	received      INTEGER NOT NULL,
	source        TEXT    NOT NULL,
	envelope_from TEXT    NOT NULL DEFAULT '',
	envelope_to   TEXT    NOT NULL DEFAULT '', -- newline-separated
	raw           BLOB    NOT NULL,
	sha256        TEXT    NOT NULL,
	message_id    TEXT    NOT NULL DEFAULT '',
	status        TEXT    NOT NULL
		CHECK (status IN ('received', 'filed', 'ignored', 'rejected', 'quarantined', 'failed')),
	reason        TEXT    NOT NULL DEFAULT '',
	issue_id      INTEGER REFERENCES issues (id) ON DELETE SET NULL,
	msg_id        INTEGER REFERENCES messages (id) ON DELETE SET NULL
) STRICT;
CREATE INDEX inbound_status ON inbound (status);
CREATE INDEX inbound_sha256 ON inbound (sha256);

CREATE TABLE messages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	issue_id    INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
	author_id   INTEGER NOT NULL REFERENCES users (id),
	date        INTEGER NOT NULL,
	message_id  TEXT    NOT NULL,
	in_reply_to TEXT    NOT NULL DEFAULT '',
	refs        TEXT    NOT NULL DEFAULT '', -- References, space-separated
	content     TEXT    NOT NULL,
	full_text   TEXT    NOT NULL,
	summary     TEXT    NOT NULL DEFAULT '',
	inbound_id  INTEGER REFERENCES inbound (id) ON DELETE SET NULL
) STRICT;
-- Idempotent ingest: an author files a Message-ID once (two senders may
-- reuse one). Its leading column also serves lookups by Message-ID alone
-- (threading), so message_id needs no index of its own.
CREATE UNIQUE INDEX messages_message_id ON messages (message_id, author_id);
CREATE INDEX messages_issue ON messages (issue_id, date, id);

CREATE TABLE files (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id   INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	content_type TEXT    NOT NULL,
	size         INTEGER NOT NULL,
	sha256       TEXT    NOT NULL,
	data         BLOB    NOT NULL
) STRICT;
CREATE INDEX files_message ON files (message_id);

-- The journal: one row per property change.
CREATE TABLE changes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	issue_id   INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
	message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
	actor_id   INTEGER REFERENCES users (id),
	at         INTEGER NOT NULL,
	property   TEXT    NOT NULL,
	old_value  TEXT    NOT NULL DEFAULT '',
	new_value  TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX changes_issue ON changes (issue_id, at, id);

-- The transactional outbox. A claimed row stays 'pending' with
-- next_attempt pushed to the end of the claimer's lease.
CREATE TABLE outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT    NOT NULL,
	issue_id     INTEGER REFERENCES issues (id) ON DELETE CASCADE,
	msg_id       INTEGER REFERENCES messages (id) ON DELETE CASCADE,
	recipient    TEXT    NOT NULL,
	payload      BLOB    NOT NULL,
	status       TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT    NOT NULL DEFAULT '',
	sent_at      INTEGER,
	created      INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt);

-- Unsubscribe and bounce tokens share one table; kind keeps them apart, so
-- a bounce token can never unsubscribe anyone.
CREATE TABLE tokens (
	token    TEXT    PRIMARY KEY,
	kind     TEXT    NOT NULL CHECK (kind IN ('unsubscribe', 'bounce')),
	user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	issue_id INTEGER REFERENCES issues (id) ON DELETE CASCADE,
	created  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE poll_cursors (
	mailbox     TEXT    PRIMARY KEY,
	uidvalidity INTEGER NOT NULL,
	last_uid    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE poll_uidls (
	mailbox TEXT NOT NULL,
	uidl    TEXT NOT NULL,
	PRIMARY KEY (mailbox, uidl)
) STRICT, WITHOUT ROWID;

-- Full-text search: FTS5 indexes over issue titles and message content,
-- external-content tables kept in step by triggers. Diacritics are kept,
-- as PostgreSQL's 'simple' configuration keeps them.
CREATE VIRTUAL TABLE issues_fts USING fts5 (
	title, content = 'issues', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER issues_fts_insert AFTER INSERT ON issues BEGIN
	INSERT INTO issues_fts (rowid, title) VALUES (new.id, new.title);
END;
CREATE TRIGGER issues_fts_delete AFTER DELETE ON issues BEGIN
	INSERT INTO issues_fts (issues_fts, rowid, title) VALUES ('delete', old.id, old.title);
END;
CREATE TRIGGER issues_fts_update AFTER UPDATE OF title ON issues BEGIN
	INSERT INTO issues_fts (issues_fts, rowid, title) VALUES ('delete', old.id, old.title);
	INSERT INTO issues_fts (rowid, title) VALUES (new.id, new.title);
END;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
	content, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
	INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
	INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
	INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
