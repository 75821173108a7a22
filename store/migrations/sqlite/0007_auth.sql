-- Issue 8: sender authentication and abuse controls.

-- mailgw.max_new_issues_per_sender_hour counts a sender's new issues of
-- the last hour. (The loop breaker counts a sender's messages on one issue
-- through messages_issue.)
CREATE INDEX issues_creator ON issues (creator_id, created);

-- At most one notice of a kind per sender per day (the reply saying why an
-- unauthenticated mail's changes were not applied).
CREATE TABLE sender_notices (
	address TEXT NOT NULL, -- lower case
	kind    TEXT NOT NULL,
	day     TEXT NOT NULL, -- YYYY-MM-DD, UTC
	PRIMARY KEY (address, kind, day)
) STRICT;
CREATE INDEX sender_notices_day ON sender_notices (day);
