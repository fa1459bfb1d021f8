"""Reports for admins: materialized views (migration 0018) refreshed together by a job, read
for a date range through the reports database (a read replica when configured)."""
