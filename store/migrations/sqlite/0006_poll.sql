-- Reserved for issue 6 (pollers); replace this no-op with its schema changes.
SELECT 1;
