"""The database schema: migrations applied at deploy, and the functions' roles."""
