"""Accounts: sign-up, sign-in, sessions, passwords; the emails they ask for are queued here."""
