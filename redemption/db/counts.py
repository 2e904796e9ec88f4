"""Per-type, per-state counts that stay fast at millions of codes.

On PostgreSQL, statement-level triggers (redemption.db.count_triggers, installed by migration
0004) append one row per (type, state) a statement changed into redemption_statecountdelta;
counts are the SUM of those rows, and `compact()` (run by the periodic sweep) folds them
together. SQLite, the embedded small-scale default, counts with GROUP BY over the rows.
"""

from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Count, Sum

from redemption.db.names import column, table
from redemption.models import STATE_ORDER, Code, CodeType, SharedRedemption, StateCountDelta


def uses_triggers() -> bool:
    return connection.vendor == "postgresql"


def by_type(code_type_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Per-state counts of each code type (personal codes, or shared redemptions)."""
    result: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATE_ORDER, 0))
    if uses_triggers():
        deltas = StateCountDelta.objects.all()
        if code_type_ids is not None:
            deltas = deltas.filter(code_type_id__in=code_type_ids)
        rows = deltas.values("code_type_id", "state").annotate(n=Sum("delta")).order_by()
        for row in rows:
            result[row["code_type_id"]][row["state"]] = int(row["n"])
        return result
    code_qs = Code.objects.filter(is_shared_anchor=False)
    shared_qs = SharedRedemption.objects.all()
    if code_type_ids is not None:
        code_qs = code_qs.filter(code_type_id__in=code_type_ids)
        shared_qs = shared_qs.filter(code_type_id__in=code_type_ids)
    for qs in (code_qs, shared_qs):
        for row in qs.values("code_type_id", "state").annotate(n=Count("*")).order_by():
            result[row["code_type_id"]][row["state"]] = row["n"]
    return result


def by_state() -> dict[str, int]:
    """Per-state totals over every code type, grouped by state alone (a handful of rows,
    however many code types there are)."""
    result = dict.fromkeys(STATE_ORDER, 0)
    if uses_triggers():
        rows = StateCountDelta.objects.values("state").annotate(n=Sum("delta")).order_by()
        for row in rows:
            result[row["state"]] = result.get(row["state"], 0) + int(row["n"] or 0)
        return result
    for qs in (Code.objects.filter(is_shared_anchor=False), SharedRedemption.objects.all()):
        for row in qs.values("state").annotate(n=Count("*")).order_by():
            result[row["state"]] = result.get(row["state"], 0) + row["n"]
    return result


def compact() -> int:
    """Fold the delta rows into one per (type, state); return how many rows were folded.

    Rows inserted while this runs are not in its snapshot, so they are neither deleted nor
    counted twice.
    """
    if not uses_triggers():
        return 0
    deltas = table(StateCountDelta)
    type_id, state, delta = (
        column(StateCountDelta, name) for name in ("code_type_id", "state", "delta")
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH folded AS (DELETE FROM {deltas} RETURNING *) "
            f"INSERT INTO {deltas} ({type_id}, {state}, {delta}) "
            f"SELECT f.{type_id}, f.{state}, sum(f.{delta}) FROM folded f "
            f"JOIN {table(CodeType)} t ON t.{column(CodeType, 'pk')} = f.{type_id} "
            f"GROUP BY 1, 2 HAVING sum(f.{delta}) <> 0"
        )
        cursor.execute(f"SELECT count(*) FROM {deltas}")
        return int(cursor.fetchone()[0])


def vacuum() -> bool:
    """VACUUM the delta table, so its folded rows stop costing every read; False (and nothing
    done) where there is none, or inside a transaction, where VACUUM cannot run.

    A fold deletes every row it sums, and until they are vacuumed each count read still walks
    their index entries and pages: after 70,000 folded rows, one type's counts took 2.2 ms.
    Autovacuum wakes once a minute; after every fold the table is small and this is cheap.
    """
    if not uses_triggers() or connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {table(StateCountDelta)}")
    return True
