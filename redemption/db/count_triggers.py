"""SQL for the PostgreSQL count triggers (used by migration 0004; no model imports here)."""

# One trigger function per table; TG_OP picks the transition tables that exist for the event.
_FUNCTION = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO redemption_statecountdelta (code_type_id, state, delta)
      SELECT code_type_id, state, count(*) FROM new_rows WHERE {keep} GROUP BY 1, 2;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO redemption_statecountdelta (code_type_id, state, delta)
      SELECT code_type_id, state, -count(*) FROM old_rows WHERE {keep} GROUP BY 1, 2;
  ELSE
    INSERT INTO redemption_statecountdelta (code_type_id, state, delta)
      SELECT code_type_id, state, sum(d) FROM (
        SELECT code_type_id, state, 1 AS d FROM new_rows WHERE {keep}
        UNION ALL
        SELECT code_type_id, state, -1 AS d FROM old_rows WHERE {keep}
      ) changed GROUP BY 1, 2 HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END $$;
"""
_TRIGGERS = """
CREATE TRIGGER {name}_ins AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}();
CREATE TRIGGER {name}_del AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}();
CREATE TRIGGER {name}_upd AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""
_TABLES = (
    ("redemption_count_codes", "redemption_code", "NOT is_shared_anchor"),
    ("redemption_count_shared", "redemption_sharedredemption", "true"),
)


def install_sql() -> list[str]:
    """SQL that creates the triggers and seeds the deltas from the rows already there."""
    statements = ["DELETE FROM redemption_statecountdelta"]
    for name, table, keep in _TABLES:
        statements.append(_FUNCTION.format(name=name, keep=keep))
        statements.append(_TRIGGERS.format(name=name, table=table))
        statements.append(
            "INSERT INTO redemption_statecountdelta (code_type_id, state, delta) "
            f"SELECT code_type_id, state, count(*) FROM {table} WHERE {keep} GROUP BY 1, 2"
        )
    return statements


def uninstall_sql() -> list[str]:
    statements = []
    for name, table, _ in _TABLES:
        for suffix in ("ins", "del", "upd"):
            statements.append(f"DROP TRIGGER IF EXISTS {name}_{suffix} ON {table}")
        statements.append(f"DROP FUNCTION IF EXISTS {name}()")
    return statements
