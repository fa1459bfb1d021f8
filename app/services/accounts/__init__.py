"""Accounts: registration, sign-in, sessions and their throttles, email spelling, visitors."""
