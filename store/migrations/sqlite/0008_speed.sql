-- Speed (docs/notes/speed.md): PostgreSQL's 0008 changes how large text
-- columns are compressed; SQLite does not compress, so nothing changes
-- here. The file keeps the two dialects' migrations numbered alike.
SELECT 1;
