"""What every part of core stands on: the clock, settings, the database connection,
errors, languages, tokens and sealing, log redaction, phone numbers."""
