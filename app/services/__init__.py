"""Services hold the rules. They flush, never commit: the request or job commits once."""
