"""Money out: payout accounts (Stripe Connect, Lemon Squeezy payee details) and payouts."""
