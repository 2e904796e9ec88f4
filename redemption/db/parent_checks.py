"""SQL for PostgreSQL's checks that a code's code type and batch exist (migration 0016).

They do what the two foreign keys of `redemption_code` did, without their cost on bulk
inserts: a foreign key checks every inserted row on its own (for a 10,000-code chunk, 20,000
index look-ups at commit, about 30 % of the database's time for the chunk), where these
triggers check the distinct parents of a whole statement at once. Like the foreign keys, they
take a KEY SHARE lock on the parents a statement inserts under, so a parent cannot be deleted
before the codes commit; deleting (or renumbering) a parent that codes still reference fails
at commit, with the same SQLSTATE (23503, IntegrityError in Django). No model imports here.
"""

# Each parent's part of the child functions below; {table}, {column}, {what} from _PARENTS.
_STATEMENT_CHECK = """
  PERFORM 1 FROM {table} p
    WHERE p.id IN (SELECT DISTINCT {column} FROM new_rows WHERE {column} IS NOT NULL)
    FOR KEY SHARE OF p;
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT {column} AS id FROM new_rows
                            WHERE {column} IS NOT NULL) n
             WHERE NOT EXISTS (SELECT 1 FROM {table} p WHERE p.id = n.id)) THEN
    RAISE EXCEPTION 'a code refers to a {what} that does not exist'
      USING ERRCODE = 'foreign_key_violation', TABLE = 'redemption_code';
  END IF;"""
# An UPDATE that moves a code to another type or batch (rare: the redeem and every state
# change leave both columns out of their SET list, so that trigger does not even fire).
_ROW_CHECK = """
  IF NEW.{column} IS NOT NULL THEN
    PERFORM 1 FROM {table} WHERE id = NEW.{column} FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'a code refers to a {what} that does not exist'
        USING ERRCODE = 'foreign_key_violation', TABLE = 'redemption_code';
    END IF;
  END IF;"""
_CHILD_FUNCTION = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{checks}
  RETURN NULL;
END $$;
"""
_PARENT = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM redemption_code WHERE {column} = OLD.id) THEN
    RAISE EXCEPTION 'codes still refer to this {what}'
      USING ERRCODE = 'foreign_key_violation', TABLE = '{table}';
  END IF;
  RETURN NULL;
END $$;
"""
_TRIGGERS = """
CREATE TRIGGER redemption_code_parents_ins AFTER INSERT ON redemption_code
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION redemption_code_parents();
CREATE TRIGGER redemption_code_parents_upd AFTER UPDATE OF code_type_id, batch_id
  ON redemption_code FOR EACH ROW
  WHEN (NEW.code_type_id IS DISTINCT FROM OLD.code_type_id
        OR NEW.batch_id IS DISTINCT FROM OLD.batch_id)
  EXECUTE FUNCTION redemption_code_parents_row();
"""
# Checked at commit, as the deferred foreign keys were: Django deletes or detaches a parent's
# codes before the parent, in the same transaction.
_PARENT_TRIGGER = """
CREATE CONSTRAINT TRIGGER {name} AFTER DELETE OR UPDATE OF id ON {table}
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}();
"""
_PARENTS = (
    ("redemption_codetype_children", "redemption_codetype", "code_type_id", "code type"),
    ("redemption_batch_children", "redemption_batch", "batch_id", "batch"),
)


def install_sql() -> list[str]:
    """SQL that creates the checks (the foreign keys are dropped by the migration)."""
    statements = [
        _CHILD_FUNCTION.format(name=name, checks="".join(check.format(**p) for p in _parents()))
        for name, check in (
            ("redemption_code_parents", _STATEMENT_CHECK),
            ("redemption_code_parents_row", _ROW_CHECK),
        )
    ]
    statements.append(_TRIGGERS)
    for name, table, column, what in _PARENTS:
        statements.append(_PARENT.format(name=name, table=table, column=column, what=what))
        statements.append(_PARENT_TRIGGER.format(name=name, table=table))
    return statements


def _parents() -> list[dict[str, str]]:
    return [{"table": table, "column": column, "what": what} for _, table, column, what in _PARENTS]


def uninstall_sql() -> list[str]:
    statements = [
        "DROP TRIGGER IF EXISTS redemption_code_parents_ins ON redemption_code",
        "DROP TRIGGER IF EXISTS redemption_code_parents_upd ON redemption_code",
        "DROP FUNCTION IF EXISTS redemption_code_parents()",
        "DROP FUNCTION IF EXISTS redemption_code_parents_row()",
    ]
    for name, table, _, _ in _PARENTS:
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        statements.append(f"DROP FUNCTION IF EXISTS {name}()")
    return statements
