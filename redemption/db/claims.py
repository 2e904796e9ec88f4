"""Row locks and conditional UPDATEs: the only place the services build either.

One exception remains: the API's idempotency records (api/idempotency.py), whose
conditional updates concern HTTP requests rather than the redemption domain.

A conditional UPDATE moves a row only from the states the transition tables in models.py
allow (`sources_of`); its row count tells the caller whether it won. A row lock
(select_for_update) locks the row itself, never the rows joined to it; callers re-check state
after taking it. Nothing here writes audit rows: the services decide what to audit
(redemption.db.audit runs an UPDATE and its audit row together).
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import F, Model, Q, QuerySet

from redemption.actors import Profile
from redemption.db.names import column, field, table
from redemption.models import (
    SLOT_STATES,
    Attempt,
    Code,
    CodeType,
    Move,
    ServerKey,
    SharedRedemption,
    State,
    sources_of,
)


@dataclass(frozen=True)
class Update:
    """One conditional UPDATE of one row, not yet run: db.audit.run_audited runs it.

    It sets `values` (field name -> Python value) and `version = version + 1` on the row
    `pk` of `model`, only while the row is in one of `sources`. The SQL is built once per
    database and shape from the model's metadata; compiling an ORM update on every redeem cost
    more CPU than the database spent running it.
    """

    model: type[Model]
    pk: Any
    sources: tuple[str, ...]
    values: dict[str, Any]

    def sql(self, *, returning_pk: bool = False) -> tuple[str, list[Any]]:
        """The UPDATE statement and its parameters (with RETURNING the primary key)."""
        model = self.model
        key = (connection.vendor, model, tuple(self.values), len(self.sources), returning_pk)
        template = _UPDATE_SQL.get(key)
        if template is None:
            sets = [f"{column(model, name)} = %s" for name in self.values]
            version = column(model, "version")
            sets.append(f"{version} = {version} + 1")
            template = (
                f"UPDATE {table(model)} SET {', '.join(sets)}"
                f" WHERE {column(model, 'pk')} = %s"
                f" AND {column(model, 'state')} IN ({', '.join(['%s'] * len(self.sources))})"
            )
            if returning_pk:
                template += f" RETURNING {column(model, 'pk')}"
            _UPDATE_SQL[key] = template
        params = [
            field(model, name).get_db_prep_save(value, connection)
            for name, value in self.values.items()
        ]
        params.append(field(model, "pk").get_db_prep_save(self.pk, connection))
        params.extend(self.sources)
        return template, params


_UPDATE_SQL: dict[tuple[Any, ...], str] = {}


def _sorted(states: frozenset[State]) -> tuple[str, ...]:
    return tuple(sorted(s.value for s in states))


# The states a code with no fulfilment is redeemed from.
REDEEM_SOURCES = _sorted(sources_of(State.REDEEMED, move=Move.REDEEM))


# The fields a redeem with no fulfilment writes on the code's row, in the order the
# one-statement redeem's function takes them (redeem_at_once).
REDEEM_FIELDS = (
    "state",
    "redeemed_by_profile_id",
    "redeemed_by_profile_name",
    "redeemed_at",
    "custom_redemption_info",
    "updated_at",
)


def redeem_values(*, profile: Profile, now: datetime, info: dict[str, Any]) -> dict[str, Any]:
    """What redeeming a code with no fulfilment writes on its row: REDEEM_FIELDS -> value."""
    values = (State.REDEEMED.value, profile.id, profile.name, now, info, now)
    return dict(zip(REDEEM_FIELDS, values, strict=True))


def code_claim_for_redeem(
    *, code_id: UUID, profile: Profile, now: datetime, info: dict[str, Any]
) -> Update:
    """The UPDATE that redeems one code with no fulfilment for `profile` (1 row if it wins)."""
    return Update(
        model=Code,
        pk=code_id,
        sources=REDEEM_SOURCES,
        values=redeem_values(profile=profile, now=now, info=info),
    )


def code_claim_for_attempt(
    *,
    code_id: UUID,
    retry: bool,
    expected_attempt: int,
    profile: Profile,
    now: datetime,
    info: dict[str, Any] | None,
) -> int:
    """Move a code to InProgress for attempt n+1; return 1 if this caller won.

    The first attempt starts from the states a redeem with fulfilment may leave; a retry from
    those a retry may leave, and only by the profile whose attempt failed.
    """
    changes: dict[str, Any] = {
        "state": State.IN_PROGRESS,
        "current_attempt": expected_attempt + 1,
        "redeemed_by_profile_id": profile.id,
        "redeemed_by_profile_name": profile.name,
        "version": F("version") + 1,
        "updated_at": now,
    }
    if info is not None:
        changes["custom_redemption_info"] = info
    move = Move.RETRY if retry else Move.ATTEMPT
    qs = Code.objects.filter(
        pk=code_id,
        state__in=sources_of(State.IN_PROGRESS, move=move),
        current_attempt=expected_attempt,
    )
    if retry:
        qs = qs.filter(redeemed_by_profile_id=profile.id)
    return qs.update(**changes)


def shared_claim_retry(*, shared_id: UUID, expected_attempt: int, now: datetime) -> int:
    """Move a Failed shared redemption to InProgress for attempt n+1; 1 if this caller won."""
    return SharedRedemption.objects.filter(
        pk=shared_id,
        state__in=sources_of(State.IN_PROGRESS, shared=True, move=Move.RETRY),
        current_attempt=expected_attempt,
    ).update(
        state=State.IN_PROGRESS,
        current_attempt=expected_attempt + 1,
        version=F("version") + 1,
        updated_at=now,
    )


def batch_codes_invalidate(*, batch_id: UUID, reason: str | None, now: datetime) -> int:
    """Invalidate every code of a batch that may still be invalidated; return how many."""
    return Code.objects.filter(
        batch_id=batch_id, state__in=sources_of(State.INVALIDATED, move=Move.INVALIDATE)
    ).update(
        state=State.INVALIDATED,
        invalidated_at=now,
        invalidation_reason=reason,
        version=F("version") + 1,
        updated_at=now,
    )


def codes_reset(*, ids: Collection[UUID], to_state: str, now: datetime) -> int:
    """Put personal codes back to Inactive or Available: clear what any redemption left on them
    (redeemer, custom redemption info, invalidation, attempts); return how many were reset.

    The caller holds the rows' locks (single reset: the code's; reset-all: each batch's).
    """
    sources = sources_of(to_state, move=Move.RESET)
    if not sources:
        raise ValueError(f"a reset cannot lead to {to_state}")
    Attempt.objects.filter(code_id__in=ids).delete()
    return Code.objects.filter(pk__in=ids, state__in=sources).update(
        state=to_state,
        redeemed_by_profile_id=None,
        redeemed_by_profile_name=None,
        redeemed_at=None,
        custom_redemption_info={},
        invalidated_at=None,
        invalidation_reason=None,
        current_attempt=0,
        activated_at=now if to_state == State.AVAILABLE else None,
        version=F("version") + 1,
        updated_at=now,
    )


def records_lock_batch(records: QuerySet[Any], *, after: Any, limit: int) -> list[tuple[Any, str]]:
    """Lock the next `limit` rows of `records` after key `after`, in key order (deadlock-safe
    against other batch walkers); return their (pk, state)."""
    page = records if after is None else records.filter(pk__gt=after)
    return list(page.select_for_update().order_by("pk").values_list("pk", "state")[:limit])


def codes_delete(*, ids: Collection[UUID]) -> int:
    """Delete personal codes (the caller holds their locks) and their attempts; return how many."""
    Attempt.objects.filter(code_id__in=ids).delete()
    return _raw_delete(Code.objects.filter(pk__in=ids))


def shared_redemptions_delete(*, ids: Collection[UUID], code_type_id: int) -> int:
    """Delete shared redemptions of one type (the caller holds their locks) and their attempts,
    then recount the type's held slots; return how many were deleted."""
    Attempt.objects.filter(shared_id__in=ids).delete()
    deleted = _raw_delete(SharedRedemption.objects.filter(pk__in=ids))
    # Lock the type after the records (the order fulfilment uses), then recount the slots.
    CodeType.objects.select_for_update().filter(pk=code_type_id).values_list(
        "pk", flat=True
    ).first()
    held = SharedRedemption.objects.filter(code_type_id=code_type_id, state__in=SLOT_STATES).count()
    CodeType.objects.filter(pk=code_type_id).update(redemption_count=held)
    return deleted


def _raw_delete(qs: QuerySet[Any]) -> int:
    """One DELETE statement; the caller already removed the attempts that would cascade."""
    return qs._raw_delete(qs.db)


def code_type_take_slot(*, code_type_id: int, now: datetime) -> int:
    """Count one more shared redemption unless the cap is reached; return 1 on success."""
    return (
        CodeType.objects.filter(pk=code_type_id)
        .filter(Q(max_redemptions__isnull=True) | Q(redemption_count__lt=F("max_redemptions")))
        .update(redemption_count=F("redemption_count") + 1)
    )


def code_type_take_slots(*, code_type_id: int, wanted: int) -> int:
    """Count up to `wanted` more shared redemptions within the cap; return how many were taken.

    The type's row stays locked until the caller's transaction ends.
    """
    ct = CodeType.objects.select_for_update().filter(pk=code_type_id).first()
    if ct is None or wanted <= 0:
        return 0
    room = wanted if ct.max_redemptions is None else ct.max_redemptions - ct.redemption_count
    taken = max(0, min(wanted, room))
    if taken:
        CodeType.objects.filter(pk=code_type_id).update(
            redemption_count=F("redemption_count") + taken
        )
    return taken


def code_type_give_slot_back(*, code_type_id: int) -> int:
    """Free the slot a failed or deleted shared redemption was holding."""
    return CodeType.objects.filter(pk=code_type_id, redemption_count__gt=0).update(
        redemption_count=F("redemption_count") - 1
    )


def code_for_update(*, code_id: UUID) -> Code | None:
    """Lock one code row (with its type read alongside) and return it, or None if gone."""
    return (
        Code.objects.select_for_update(of=("self",))
        .select_related("code_type")
        .filter(pk=code_id)
        .first()
    )


def code_for_update_by_canonical(canon: str) -> Code | None:
    """Lock the personal code stored under this canonical scan code (type read alongside)."""
    return (
        Code.objects.select_for_update(of=("self",))
        .select_related("code_type")
        .filter(canonical=canon, is_shared_anchor=False)
        .first()
    )


def shared_for_update(*, shared_id: UUID) -> SharedRedemption | None:
    """Lock one shared redemption row and return it, or None if gone."""
    return (
        SharedRedemption.objects.select_for_update(of=("self",))
        .select_related("code_type")
        .filter(pk=shared_id)
        .first()
    )


def code_type_for_update(*, name: str) -> CodeType | None:
    """Lock one code type row by name and return it, or None if there is none."""
    return CodeType.objects.select_for_update().filter(name=name).first()


def server_key_for_update(*, key_id: int) -> ServerKey:
    """Lock one server key row and return it."""
    return ServerKey.objects.select_for_update().get(pk=key_id)


def server_key_note_use(*, key_id: int, now: datetime, resolution: timedelta) -> int:
    """Stamp a server key's last use unless it was stamped within `resolution` (1 if written).

    Conditional, so many processes racing on one key write it once per resolution.
    """
    return (
        ServerKey.objects.filter(pk=key_id)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - resolution))
        .update(last_used_at=now)
    )
