-- Speed (docs/notes/speed.md): the large text columns of the filing path
-- are compressed with lz4 instead of pglz, which took a good part of the
-- server's CPU per mail (every mail stores its raw bytes, its text and its
-- full text, each a few KB and so compressed). Rows already stored keep
-- their compression; both read back the same. A server built without lz4
-- keeps pglz.
DO $$
BEGIN
	ALTER TABLE inbound ALTER COLUMN raw SET COMPRESSION lz4;
	ALTER TABLE messages ALTER COLUMN content SET COMPRESSION lz4;
	ALTER TABLE messages ALTER COLUMN full_text SET COMPRESSION lz4;
	ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END
$$;
