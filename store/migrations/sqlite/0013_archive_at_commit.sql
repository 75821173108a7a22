-- Ingest speed (issue 4): PostgreSQL's 0013 lets a transaction write the
-- archive row after the rows that point at it. SQLite's archive rows are
-- written at once, as before; the file keeps the two dialects'
-- migrations numbered alike.
SELECT 1;
