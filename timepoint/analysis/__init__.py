"""Reading finished runs as data: audits of what their records claim."""
