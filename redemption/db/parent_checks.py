"""SQL for PostgreSQL's checks that a code's code type and batch exist (migration 0016).

They do what the two foreign keys of `redemption_code` did, without their cost on bulk
inserts: a foreign key checks every inserted row on its own (for a 10,000-code chunk, 20,000
index look-ups at commit, about 30 % of the database's time for the chunk), where these
triggers check the distinct parents of a whole statement at once. Like the foreign keys, they
take a KEY SHARE lock on the parents a statement inserts under, so a parent cannot be deleted
before the codes commit; deleting (or renumbering) a parent that codes still reference fails
at commit, with the same SQLSTATE (23503, IntegrityError in Django). No model imports here.
"""

_CHILD_STATEMENT = """
CREATE OR REPLACE FUNCTION redemption_code_parents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM redemption_codetype t
    WHERE t.id IN (SELECT DISTINCT code_type_id FROM new_rows) FOR KEY SHARE OF t;
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT code_type_id AS id FROM new_rows) n
             WHERE NOT EXISTS (SELECT 1 FROM redemption_codetype t WHERE t.id = n.id)) THEN
    RAISE EXCEPTION 'a code refers to a code type that does not exist'
      USING ERRCODE = 'foreign_key_violation', TABLE = 'redemption_code';
  END IF;
  PERFORM 1 FROM redemption_batch b
    WHERE b.id IN (SELECT DISTINCT batch_id FROM new_rows WHERE batch_id IS NOT NULL)
    FOR KEY SHARE OF b;
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT batch_id AS id FROM new_rows
                            WHERE batch_id IS NOT NULL) n
             WHERE NOT EXISTS (SELECT 1 FROM redemption_batch b WHERE b.id = n.id)) THEN
    RAISE EXCEPTION 'a code refers to a batch that does not exist'
      USING ERRCODE = 'foreign_key_violation', TABLE = 'redemption_code';
  END IF;
  RETURN NULL;
END $$;
"""
# An UPDATE that moves a code to another type or batch (rare: the redeem and every state
# change leave both columns out of their SET list, so this trigger does not even fire).
_CHILD_ROW = """
CREATE OR REPLACE FUNCTION redemption_code_parents_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM redemption_codetype WHERE id = NEW.code_type_id FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'a code refers to a code type that does not exist'
      USING ERRCODE = 'foreign_key_violation', TABLE = 'redemption_code';
  END IF;
  IF NEW.batch_id IS NOT NULL THEN
    PERFORM 1 FROM redemption_batch WHERE id = NEW.batch_id FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'a code refers to a batch that does not exist'
        USING ERRCODE = 'foreign_key_violation', TABLE = 'redemption_code';
    END IF;
  END IF;
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
    statements = [_CHILD_STATEMENT, _CHILD_ROW, _TRIGGERS]
    for name, table, column, what in _PARENTS:
        statements.append(_PARENT.format(name=name, table=table, column=column, what=what))
        statements.append(_PARENT_TRIGGER.format(name=name, table=table))
    return statements


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
