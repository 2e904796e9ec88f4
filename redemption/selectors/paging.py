"""Keyset pages: rows in key order, never a full COUNT, with cursors both ways."""

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import ForeignKey, Lookup, QuerySet

from redemption.ids import uuid_or_none
from redemption.models import (
    CodeType,
)


@dataclass(frozen=True)
class KeysetPage:
    """One page of rows ordered by primary key, with the cursors of its neighbours."""

    rows: list[Any]
    after: str | None  # cursor for the next page (rows with a larger key)
    before: str | None  # cursor for the previous page (rows with a smaller key)
    is_first: bool


def keyset_page(
    qs: QuerySet[Any],
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int = 50,
    leading: tuple[str, ...] = ("code_type_id",),
) -> KeysetPage:
    """Return one page of `qs` ordered by id, never counting the whole set (one query).

    `qs` is filtered to one value of each `leading` column; ordering by them too lets the
    planner walk the (code_type, id) index instead of the primary key, which with 10M codes
    of one type among others skipped millions of rows for the first page.
    """
    after_id, before_id = uuid_or_none(after), uuid_or_none(before)
    if before_id is not None:
        descending = [f"-{name}" for name in leading]
        rows = list(qs.filter(pk__lt=before_id).order_by(*descending, "-pk")[: per_page + 1])
        has_more_before = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        return KeysetPage(
            rows=rows,
            after=str(rows[-1].pk) if rows else None,
            before=str(rows[0].pk) if rows and has_more_before else None,
            is_first=not has_more_before,
        )
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    rows = list(qs.order_by(*leading, "pk")[: per_page + 1])
    has_more = len(rows) > per_page
    rows = rows[:per_page]
    return KeysetPage(
        rows=rows,
        after=str(rows[-1].pk) if rows and has_more else None,
        before=str(rows[0].pk) if rows and after_id is not None else None,
        is_first=after_id is None,
    )


class AnyOf(Lookup):
    """`column = ANY(array)`: PostgreSQL keeps it as an index condition where `column = x`
    would be folded away from ORDER BY, leaving the planner to walk the primary key."""

    lookup_name = "anyof"

    def get_prep_lookup(self) -> list[int]:
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(self.rhs))


ForeignKey.register_lookup(AnyOf)


def of_type(model: Any, code_type: CodeType) -> QuerySet[Any]:
    """Rows of one code type, filtered so a keyset page walks the (code_type, id) index.

    On PostgreSQL a plain `code_type_id = x ORDER BY id` lets the planner fold the equality
    away and walk the primary key, skipping every row of older types; `= ANY(array)` keeps it
    an index condition on (code_type, id).
    """
    if connection.vendor == "postgresql":
        return model.objects.filter(code_type__anyof=[code_type.pk])
    return model.objects.filter(code_type=code_type)
