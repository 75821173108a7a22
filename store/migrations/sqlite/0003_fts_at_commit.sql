-- New issues and messages are added to the FTS5 indexes when their
-- transaction commits (store: ftsPending), not by a trigger per row: FTS5
-- flushes its pending index data at every SAVEPOINT, and a group commit
-- takes one savepoint per mail, so a trigger per row cost a flush per mail.
-- The update and delete triggers stay.
DROP TRIGGER issues_fts_insert;
DROP TRIGGER messages_fts_insert;

-- Re-index a title only when it really changes: UpdateIssue writes the
-- title every time, and an issue created earlier in the same transaction
-- is not in the index yet (UpdateIssue indexes it first when its title
-- changes; see conn.UpdateIssue).
DROP TRIGGER issues_fts_update;
CREATE TRIGGER issues_fts_update AFTER UPDATE OF title ON issues WHEN old.title IS NOT new.title BEGIN
	INSERT INTO issues_fts (issues_fts, rowid, title) VALUES ('delete', old.id, old.title);
	INSERT INTO issues_fts (rowid, title) VALUES (new.id, new.title);
END;
