-- Reserved for issue 5 (notifications); replace this no-op with its schema changes.
SELECT 1;
