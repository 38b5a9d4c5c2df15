-- A password reset ends every pending challenge of the account (sluice.accounts,
-- confirm_reset): it finds them by the address every challenge names. Without an
-- index that is a scan of a week of challenges (millions after an abusive burst of
-- registrations) inside the reset's transaction.
CREATE INDEX email_challenges_email ON email_challenges (email);
