-- Nothing to do on PostgreSQL: its full-text indexes are expression indexes
-- maintained by the database. (SQLite moves FTS5 inserts to commit time.)
SELECT 1;
