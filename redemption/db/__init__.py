"""Database-specific SQL: the one corner where raw SQL and row locks live."""
