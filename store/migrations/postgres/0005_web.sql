-- Reserved for issue 7 (web view); replace this no-op with its schema changes.
SELECT 1;
