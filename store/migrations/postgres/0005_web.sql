-- No schema change: the web view (issue 7) needed none. Kept so that
-- the versions stay without gaps.
SELECT 1;
