"""RQ entry points only: each job takes ids, loads them, calls a service, commits once."""
