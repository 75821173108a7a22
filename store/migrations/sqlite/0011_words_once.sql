-- Ingest speed (issue 4): PostgreSQL's 0011 computes a new issue's
-- lexemes once; SQLite's index is filled at commit (store: ftsPending)
-- and needs no change. The file keeps the two dialects' migrations
-- numbered alike.
SELECT 1;
