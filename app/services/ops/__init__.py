"""Operations: the audit log and health checks."""
