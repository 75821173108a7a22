-- Ingest speed (issue 4, docs/notes/issue-4-speed-5.md): a mail's archive
-- row is written once, at the commit of its transaction, with its outcome
-- (store.InsertInboundLater), and its id is taken from the sequence
-- before. The rows that point at it, the mail's message and a bounce's
-- record, are written before it in that transaction: their foreign keys
-- are checked at commit. ON DELETE SET NULL still acts at once.
ALTER TABLE messages ALTER CONSTRAINT messages_inbound_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE bounces ALTER CONSTRAINT bounces_inbound_id_fkey DEFERRABLE INITIALLY DEFERRED;
