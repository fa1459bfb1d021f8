"""Mail: the outbox (queue in the event's transaction, send once), rendering, SMTP, unsubscribe."""
