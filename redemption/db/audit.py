"""Run a conditional UPDATE and write its audit row together, in one statement where possible."""

from datetime import datetime
from typing import Any

from django.db import connection, transaction

from redemption.db.claims import Update
from redemption.db.names import column, table
from redemption.models import AuditEvent


def run_audited(update: Update, *, at: datetime, row: dict[str, Any]) -> int:
    """Run `update`; if it moved its row, append the audit event `row` (columns but `at`).

    Returns 1 if the row moved. On PostgreSQL the UPDATE and the INSERT are one statement
    (a data-modifying CTE): atomic on its own and a single round trip, which matters on the
    redeem path. Elsewhere they share one transaction.
    """
    if connection.vendor == "postgresql":
        update_sql, update_params = update.sql(returning_pk=True)
        insert_sql, insert_params = _insert_one_per_moved_row(at=at, row=row)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH moved AS ({update_sql}) {insert_sql}", [*update_params, *insert_params]
            )
            return cursor.rowcount
    with transaction.atomic():
        moved = update.run()
        if moved:
            AuditEvent.objects.create(at=at, **row)
    return moved


def _insert_one_per_moved_row(*, at: datetime, row: dict[str, Any]) -> tuple[str, list[Any]]:
    """INSERT … SELECT of the audit event once per row of the CTE `moved`.

    The column list comes from the model's metadata (every field but the generated key);
    a column missing from `row` gets its field's default.
    """
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    template = _INSERT_SQL.get(connection.vendor)
    if template is None:
        columns = ", ".join(column(AuditEvent, f.name) for f in fields)
        template = (
            f"INSERT INTO {table(AuditEvent)} ({columns})"
            f" SELECT {', '.join(['%s'] * len(fields))} FROM moved"
        )
        _INSERT_SQL[connection.vendor] = template
    values = {**row, "at": at}
    params = [
        f.get_db_prep_save(values[f.name] if f.name in values else f.get_default(), connection)
        for f in fields
    ]
    return template, params


_INSERT_SQL: dict[str, str] = {}
