-- Issue 9: a claimed outbox row says so. claimed_until is the end of the
-- claimer's lease in Unix microseconds (NULL: nobody holds the row), so
-- that `outbox retry` leaves alone the rows a notifier is sending right
-- now: resetting them made a second process send them again (found by
-- TestCrashRelayDown).
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
