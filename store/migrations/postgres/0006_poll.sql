-- No schema change: the pollers (issue 6) use poll_cursors and poll_uidls
-- of 0001, and their locks need no table. Kept so that the versions stay
-- without gaps.
SELECT 1;
