"""Reads about code types (campaigns): one by name, the inventory, per-state counts."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from redemption import exceptions as exc
from redemption import rules
from redemption.db import claims, counts
from redemption.models import (
    STATE_ORDER,
    CodeType,
)
from redemption.selectors.paging import cursor_decode, cursor_encode


def code_type_get(name: str, *, for_update: bool = False) -> CodeType:
    """The code type called `name` (locked for a write with `for_update`), or CodeTypeNotFound."""
    if for_update:
        found = claims.code_type_for_update(name=name)
    else:
        found = CodeType.objects.filter(name=name).first()
    if found is None:
        raise exc.CodeTypeNotFoundError(details={"codeType": name})
    return found


def code_types_for_choices() -> list[tuple[str, str]]:
    """(name, label) pairs of every code type, for select boxes."""
    return [(n, n) for n in CodeType.objects.order_by("name").values_list("name", flat=True)]


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(STATE_ORDER, 0)


def state_counts(code_type: CodeType) -> dict[str, int]:
    """Per-state counts of one code type (personal codes, or shared redemptions)."""
    return state_counts_by_type([code_type]).get(code_type.pk, empty_counts())


def state_counts_by_type(code_types: list[CodeType] | None = None) -> dict[int, dict[str, int]]:
    """Per-state counts for many code types (trigger-kept counters on PostgreSQL)."""
    ids = None if code_types is None else [ct.pk for ct in code_types]
    return counts.by_type(ids)


def inventory_summary() -> list[dict[str, Any]]:
    """One row per code type: use type, per-state counts, total, disabled flag."""
    types = list(CodeType.objects.all())
    counts = state_counts_by_type(types)
    rows = []
    for ct in types:
        c = counts.get(ct.pk, empty_counts())
        rows.append({"code_type": ct, "counts": c, "total": sum(c.values())})
    return rows


CODE_TYPES = "code-types"
CODE_TYPES_BEFORE = "code-types-before"


@dataclass(frozen=True)
class CodeTypePage:
    """One page of code types by name, each with its per-state counts and total."""

    rows: list[dict[str, Any]]  # as inventory_summary: code_type, counts, total
    next_cursor: str | None
    # The portal pages both ways: the cursor of the page before (None on the first page).
    previous_cursor: str | None = None
    # Per-state totals over every code type, when asked for (with_totals).
    totals: dict[str, int] | None = None


def code_types_page(
    *,
    search: str | None = None,
    use_type: str | None = None,
    disabled: bool | None = None,
    has_webhook: bool | None = None,
    archived: bool | None = False,
    cursor: str | None = None,
    before: str | None = None,
    limit: int = rules.PAGE_LIMIT_DEFAULT,
    with_totals: bool = False,
) -> CodeTypePage:
    """Code types by name, filtered and one page at a time, with their counts (one query).

    The one selector behind the portal inventory, `GET /server/code-types` and the wire's
    code-type page. `search` matches a case-insensitive substring of the name or the
    description; `archived` False (the default) hides archived types, True lists only them,
    None lists both. `cursor` continues after a page's `next_cursor`; `before` (the portal's
    "previous") ends before a page's `previous_cursor`. `with_totals` also adds up every
    code type by state (grouped by state alone: with thousands of types, summing the
    per-type counts in Python cost far more than the database's own sum).
    """
    qs = _code_types_filtered(
        search=search,
        use_type=use_type,
        disabled=disabled,
        has_webhook=has_webhook,
        archived=archived,
    )
    if before is not None:
        (until,) = cursor_decode(CODE_TYPES_BEFORE, before, (str,))
        types = list(qs.filter(name__lt=until).order_by("-name")[: limit + 1])
        earlier = len(types) > limit
        types = list(reversed(types[:limit]))
        more, first = bool(types), not earlier
    else:
        after = None
        if cursor is not None:
            (after,) = cursor_decode(CODE_TYPES, cursor, (str,))
            qs = qs.filter(name__gt=after)
        types = list(qs.order_by("name")[: limit + 1])
        more = len(types) > limit
        types = types[:limit]
        first = after is None
    counts = state_counts_by_type(types)
    rows = []
    for ct in types:
        c = counts.get(ct.pk, empty_counts())
        rows.append({"code_type": ct, "counts": c, "total": sum(c.values())})
    totals = totals_by_state() if with_totals else None
    next_cursor = cursor_encode(CODE_TYPES, [types[-1].name]) if more and types else None
    previous = None
    if not first and types:
        previous = cursor_encode(CODE_TYPES_BEFORE, [types[0].name])
    return CodeTypePage(rows=rows, next_cursor=next_cursor, previous_cursor=previous, totals=totals)


def code_types_count(
    *,
    search: str | None = None,
    use_type: str | None = None,
    disabled: bool | None = None,
    has_webhook: bool | None = None,
    archived: bool | None = False,
) -> int:
    """How many code types `code_types_page` walks through with these filters."""
    return _code_types_filtered(
        search=search,
        use_type=use_type,
        disabled=disabled,
        has_webhook=has_webhook,
        archived=archived,
    ).count()


def _code_types_filtered(
    *,
    search: str | None,
    use_type: str | None,
    disabled: bool | None,
    has_webhook: bool | None,
    archived: bool | None,
) -> QuerySet[CodeType]:
    qs = CodeType.objects.all()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if use_type is not None:
        qs = qs.filter(use_type=use_type)
    if disabled is not None:
        qs = qs.filter(is_disabled=disabled)
    if has_webhook is not None:
        qs = qs.exclude(fulfillment_url="") if has_webhook else qs.filter(fulfillment_url="")
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    return qs


def totals_by_state() -> dict[str, int]:
    """Per-state totals over every code type."""
    return counts.by_state()
