"""Run a conditional UPDATE and write its audit row together, in one statement where possible."""

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, transaction

from redemption.db.claims import Update
from redemption.db.names import column, table
from redemption.models import AuditEvent


def run_audited(update: Update, *, at: datetime, row: dict[str, Any]) -> int:
    """Run `update`; if it moved its row, append the audit event `row` (columns but `at`).

    Returns 1 if the row moved. On PostgreSQL the UPDATE and the INSERT are one statement
    (a data-modifying CTE): atomic on its own and a single round trip, which matters on the
    redeem path. Elsewhere (SQLite) they share one transaction, and both statements and their
    parameters are made before it begins: a SQLite transaction holds the database's only write
    lock, which every other writer waits for, so nothing but the two statements runs inside it.
    """
    update_sql, update_params = update.sql(returning_pk=connection.vendor == "postgresql")
    params = event_params(at=at, row=row)
    if connection.vendor == "postgresql":
        insert_sql = _insert_sql(" SELECT {} FROM moved")
        with connection.cursor() as cursor:
            cursor.execute(f"WITH moved AS ({update_sql}) {insert_sql}", [*update_params, *params])
            return cursor.rowcount
    insert_sql = _insert_sql(" VALUES ({})")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(update_sql, update_params)
        moved = cursor.rowcount
        if moved:
            cursor.execute(insert_sql, params)
    return moved


@cache  # the model's metadata is fixed once it loads; read on every redeem
def event_fields() -> tuple[Any, ...]:
    """Every field of the audit event but its generated key, in the model's order."""
    return tuple(f for f in AuditEvent._meta.concrete_fields if not f.primary_key)


def event_params(
    *, at: datetime, row: dict[str, Any], fields: Sequence[Any] | None = None
) -> list[Any]:
    """The audit event's values for `fields` (default: every one but the key) as the database
    takes them, for `row` at `at`; a field missing from `row` gets its default, as
    `AuditEvent.objects.create` would give it."""
    values = {**row, "at": at}
    return [
        f.get_db_prep_save(values[f.name] if f.name in values else f.get_default(), connection)
        for f in (event_fields() if fields is None else fields)
    ]


def _insert_sql(rows: str) -> str:
    """INSERT INTO the audit table, every column, then `rows` with the placeholders filled in:
    one row of VALUES, or the event once per row of the CTE `moved`."""
    key = (connection.vendor, rows)
    template = _INSERT_SQL.get(key)
    if template is None:
        fields = event_fields()
        columns = ", ".join(column(AuditEvent, f.name) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        insert = f"INSERT INTO {table(AuditEvent)} ({columns})"
        template = _INSERT_SQL[key] = insert + rows.format(placeholders)
    return template


_INSERT_SQL: dict[tuple[str, str], str] = {}
