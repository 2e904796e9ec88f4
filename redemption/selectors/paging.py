"""Keyset pages: rows in key order, never a full COUNT, with cursors both ways.

Lists that page newest first (audit log, jobs, a profile's records) and the code-type list
hand out opaque cursors: the key of the row to continue after, as signed JSON, so a cursor
is checked (a tampered or made-up one is refused) and reads the same however many rows are
inserted meanwhile.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import signing
from django.db import connection
from django.db.models import ForeignKey, Lookup, Q, QuerySet, UUIDField

from redemption import exceptions as exc
from redemption import rules
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


# --- opaque cursors ---------------------------------------------------------------------------

_SALT = "redemption.cursor."
CURSOR_REFUSED = "is not a cursor this list handed out"


def cursor_encode(kind: str, key: Sequence[Any]) -> str:
    """An opaque cursor for one list (`kind`) that continues after the row with `key`."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    values = [str(v) if isinstance(v, uuid.UUID) else v for v in values]
    return signing.dumps(values, salt=_SALT + kind, compress=False)


def cursor_decode(kind: str, cursor: str, types: Sequence[type]) -> list[Any]:
    """The key a cursor of `kind` holds, as `types`; INVALID_PARAMETER_VALUE for any other."""
    try:
        if not rules.is_cursor(cursor):
            raise ValueError(cursor)
        values = signing.loads(cursor, salt=_SALT + kind)
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError(values)
        return [_as(t, v) for t, v in zip(types, values, strict=True)]
    except (signing.BadSignature, ValueError, TypeError):
        raise exc.invalid_fields({"cursor": CURSOR_REFUSED}) from None


def _as(kind: type, value: Any) -> Any:
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(value)
    return value


def after_key(fields: Sequence[str], key: Sequence[Any], *, descending: bool) -> Q:
    """Rows strictly after `key` in (fields) order, written so that an index on the fields
    starts at the key: (a <= x) AND (a < x OR (a = x AND b < y)) rather than the OR alone."""
    first, *rest = fields
    lt, lte = ("lt", "lte") if descending else ("gt", "gte")
    strictly = Q(**{f"{first}__{lt}": key[0]})
    if rest:
        strictly |= Q(**{first: key[0]}) & after_key(rest, key[1:], descending=descending)
    return Q(**{f"{first}__{lte}": key[0]}) & strictly if rest else strictly


def newest_first_page(
    qs: QuerySet[Any],
    *,
    kind: str,
    time_field: str,
    after: str | None = None,
    before: str | None = None,
    per_page: int = 50,
) -> KeysetPage:
    """One page of `qs`, newest first by (time_field, id), with signed cursors both ways.

    `after` continues with older rows, `before` goes back to newer ones; one query per page.
    """
    pk_type = uuid.UUID if isinstance(qs.model._meta.pk, UUIDField) else int
    types = (datetime, pk_type)
    fields = (time_field, "pk")
    if before is not None:
        key = cursor_decode(kind, before, types)
        newer = list(
            qs.filter(after_key(fields, key, descending=False)).order_by(time_field, "pk")[
                : per_page + 1
            ]
        )
        more_newer = len(newer) > per_page
        rows = list(reversed(newer[:per_page]))
        return KeysetPage(
            rows=rows,
            after=_cursor_of(kind, rows[-1], time_field) if rows else None,
            before=_cursor_of(kind, rows[0], time_field) if rows and more_newer else None,
            is_first=not more_newer,
        )
    if after is not None:
        qs = qs.filter(after_key(fields, cursor_decode(kind, after, types), descending=True))
    rows = list(qs.order_by(f"-{time_field}", "-pk")[: per_page + 1])
    has_more = len(rows) > per_page
    rows = rows[:per_page]
    return KeysetPage(
        rows=rows,
        after=_cursor_of(kind, rows[-1], time_field) if rows and has_more else None,
        before=_cursor_of(kind, rows[0], time_field) if rows and after is not None else None,
        is_first=after is None,
    )


def _cursor_of(kind: str, row: Any, time_field: str) -> str:
    return cursor_encode(kind, [getattr(row, time_field), row.pk])
