"""Money in: provider events, sales, commissions, fraud signals and the ledger."""
