-- Issue 5 (notifications): bounces counted against users.
--
-- One row per bounce mail (by its Message-ID) and user: a DSN delivered
-- twice is counted once. users.bounce_count counts the hard bounces since
-- the user's mail last got through (a mail from the address clears it);
-- users.bouncing is set when it reaches outgoing.bounce_limit.
CREATE TABLE bounces (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	issue_id   INTEGER REFERENCES issues (id) ON DELETE SET NULL,
	inbound_id INTEGER REFERENCES inbound (id) ON DELETE SET NULL,
	message_id TEXT    NOT NULL,
	hard       INTEGER NOT NULL CHECK (hard IN (0, 1)),
	status     TEXT    NOT NULL DEFAULT '', -- RFC 3463 code, e.g. 5.1.1
	created    INTEGER NOT NULL,
	UNIQUE (user_id, message_id)
) STRICT;
CREATE INDEX bounces_user ON bounces (user_id, id);
