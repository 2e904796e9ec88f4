"""Each raw SQL path in redemption/db gives what the plain ORM query for the same question gives.

The product keeps one implementation (the raw one, for speed); the ORM query lives only here.
Both run on whichever database the suite runs on (SQLite and PostgreSQL in CI).
"""

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, F
from django.utils import timezone

from redemption.actors import Actor, Profile
from redemption.db import claims, counts, lookups
from redemption.db.audit import run_audited
from redemption.models import (
    STATE_ORDER,
    AuditEvent,
    Batch,
    Code,
    CodeType,
    RedeemFailure,
    SharedRedemption,
    State,
    StateCountDelta,
)
from redemption.services._common import audit_fields
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

# Values that trip up hand-built SQL: quotes, non-ASCII, nested JSON, a JSON null.
PROFILE = Profile("p-'42'", 'Zoë "the" O\'Brien')
INFO = {"note": "it's ☃", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}


def _row(record, *, skip=("id", "scan_code", "canonical")) -> dict:
    return {
        f.attname: getattr(record, f.attname)
        for f in type(record)._meta.concrete_fields
        if f.attname not in skip
    }


def _twins(**fields) -> tuple[Code, Code]:
    """Two codes alike in every column but their keys and scan codes."""
    ct, now = CodeTypeFactory(), timezone.now()
    fields |= {"code_type": ct, "created_at": now, "updated_at": now}
    return CodeFactory(**fields), CodeFactory(**fields)


def _orm_redeem(code: Code, *, now, info) -> int:
    """The same claim as the ORM would write it."""
    return Code.objects.filter(pk=code.pk, state=State.AVAILABLE).update(
        state=State.REDEEMED,
        redeemed_by_profile_id=PROFILE.id,
        redeemed_by_profile_name=PROFILE.name,
        redeemed_at=now,
        custom_redemption_info=info,
        version=F("version") + 1,
        updated_at=now,
    )


def _audit_row(code: Code) -> dict:
    return audit_fields(
        actor=Actor.system("parity"),
        action="code.redeem",
        code_type_name=code.code_type.name,
        target_id=str(code.pk),
        scan_code=code.scan_code,
        profile_id=PROFILE.id,
        details={"why": "it's ☃"},
    )


# --- the redeem claim (db/claims.Update, db/audit.run_audited) ----------------------------------


def _run_alone(claim: claims.Update) -> int:
    sql, params = claim.sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@pytest.mark.parametrize("audited", [False, True], ids=["alone", "with-audit"])
def test_the_redeem_claim_writes_what_an_orm_update_writes(audited):
    raw, orm = _twins(state=State.AVAILABLE, custom_code_info={"gold": 1})
    now = timezone.now()
    claim = claims.code_claim_for_redeem(code_id=raw.pk, profile=PROFILE, now=now, info=INFO)

    won = run_audited(claim, at=now, row=_audit_row(raw)) if audited else _run_alone(claim)
    orm_won = _orm_redeem(orm, now=now, info=INFO)
    if audited:
        AuditEvent.objects.create(at=now, **_audit_row(orm))

    raw.refresh_from_db()
    orm.refresh_from_db()
    assert (won, orm_won) == (1, 1)
    assert _row(raw) == _row(orm)
    assert raw.custom_redemption_info == INFO
    if audited:
        raw_event, orm_event = (AuditEvent.objects.get(target_id=str(c.pk)) for c in (raw, orm))
        skip = ("id", "target_id", "scan_code")
        assert _row(raw_event, skip=skip) == _row(orm_event, skip=skip)
        assert raw_event.at == now
        assert raw_event.details == {"why": "it's ☃"}


@pytest.mark.parametrize("state", [s for s in State if s != State.AVAILABLE])
def test_the_redeem_claim_leaves_what_an_orm_update_leaves(state):
    raw, orm = _twins(state=state, redeemed_by_profile_id="other", redeemed_at=timezone.now())
    now = timezone.now()
    claim = claims.code_claim_for_redeem(code_id=raw.pk, profile=PROFILE, now=now, info=INFO)

    won = run_audited(claim, at=now, row=_audit_row(raw))
    orm_won = _orm_redeem(orm, now=now, info=INFO)

    raw.refresh_from_db()
    orm.refresh_from_db()
    assert (won, orm_won) == (0, 0)
    assert _row(raw) == _row(orm)
    assert raw.state == state
    assert not AuditEvent.objects.exists()


# --- the redeem lookup (db/lookups.code_with_type) ----------------------------------------------


def _compare_field_by_field(raw, orm) -> None:
    for f in type(orm)._meta.concrete_fields:
        got, want = getattr(raw, f.attname), getattr(orm, f.attname)
        assert (got, type(got)) == (want, type(want)), f.attname


def test_the_redeem_lookup_reads_what_select_related_reads():
    now = timezone.now().replace(microsecond=123456)
    ct = CodeTypeFactory(
        description='Zoë\'s "card"',
        valid_start=now - timedelta(days=1),
        valid_end=now + timedelta(days=1),
        custom_code_info=INFO,
        fulfillment_url="https://example.com/hook",
        fulfillment_async=True,
        fulfillment_max_retries=3,
        webhook_secret="whsec_x",
    )
    batch = Batch.objects.create(code_type=ct, kind="import", created_at=now)
    code = CodeFactory(
        code_type=ct,
        scan_code="PARI-TY01",
        state=State.FAILED,
        batch=batch,
        custom_code_info=INFO,
        custom_redemption_info={"ticket": None},
        redeemed_by_profile_id=PROFILE.id,
        redeemed_by_profile_name=PROFILE.name,
        current_attempt=2,
        activated_at=now,
        invalidation_reason=None,
    )
    shared = SharedCodeTypeFactory(scan_code="PARITY-SHARED", max_redemptions=5)

    for canon in (code.canonical, shared.canonical_scan_code):
        raw = lookups.code_with_type(canon)
        orm = Code.objects.select_related("code_type").get(canonical=canon)
        assert raw is not None
        _compare_field_by_field(raw, orm)
        _compare_field_by_field(raw.code_type, orm.code_type)
    assert lookups.code_with_type("NOSUCHCODE") is None


# --- the failed-redeem count (db/lookups.failures_since) ----------------------------------------


def test_the_failure_count_counts_what_an_orm_count_counts():
    now = timezone.now()
    since = now - timedelta(minutes=10)
    for bucket, ages in {
        "profile:a": [1, 2, 3, 11],
        "ip:10.0.0.1": [5],
        "profile:b'quote": [0, 9],
        "profile:other": [1],
    }.items():
        RedeemFailure.objects.bulk_create(
            RedeemFailure(bucket=bucket, at=now - timedelta(minutes=age)) for age in ages
        )
    RedeemFailure.objects.create(bucket="profile:a", at=since)  # on the edge: not counted
    asked = ["profile:a", "ip:10.0.0.1", "profile:b'quote", "profile:none"]

    raw = lookups.failures_since(asked, since)
    orm = dict(
        RedeemFailure.objects.filter(bucket__in=asked, at__gt=since)
        .values_list("bucket")
        .annotate(n=Count("*"))
        .order_by()
    )

    assert raw == orm == {"profile:a": 3, "ip:10.0.0.1": 1, "profile:b'quote": 2}


# --- inventory counts (db/counts) ---------------------------------------------------------------


def _orm_counts() -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATE_ORDER, 0))
    for qs in (Code.objects.filter(is_shared_anchor=False), SharedRedemption.objects.all()):
        for row in qs.values("code_type_id", "state").annotate(n=Count("*")).order_by():
            result[row["code_type_id"]][row["state"]] = row["n"]
    return dict(result)


def _nonzero(by_type: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    return {k: v for k, v in by_type.items() if any(v.values())}


def _churn() -> None:
    """Inserts, updates (single and bulk), deletes, shared redemptions, a deleted type."""
    personal, other, gone = CodeTypeFactory(), CodeTypeFactory(), CodeTypeFactory()
    shared = SharedCodeTypeFactory()
    now = timezone.now()
    for state in STATE_ORDER:
        CodeFactory(code_type=personal, state=state, redeemed_by_profile_id="x", redeemed_at=now)
    CodeFactory.create_batch(3, code_type=other, state=State.INACTIVE)
    CodeFactory.create_batch(2, code_type=gone)
    Code.objects.filter(code_type=other).update(state=State.AVAILABLE)
    Code.objects.filter(code_type=personal, state=State.INACTIVE).delete()
    for i, state in enumerate([State.REDEEMED, State.REDEEMED, State.FAILED]):
        SharedRedemption.objects.create(
            code_type=shared,
            profile_id=f"p{i}",
            state=state,
            created_at=now,
            redeemed_at=now,
            updated_at=now,
        )
    SharedRedemption.objects.filter(state=State.FAILED).update(state=State.IN_PROGRESS)
    CodeType.objects.filter(pk=gone.pk).delete()


def test_counts_by_type_are_an_orm_group_by():
    _churn()

    assert _nonzero(counts.by_type()) == _nonzero(_orm_counts())
    some = list(_orm_counts())[:2]
    wanted = {k: v for k, v in _nonzero(_orm_counts()).items() if k in some}
    assert _nonzero(counts.by_type(some)) == wanted


def test_compacting_leaves_every_count_unchanged():
    _churn()
    before = _nonzero(counts.by_type())

    counts.compact()

    assert _nonzero(counts.by_type()) == before == _nonzero(_orm_counts())
    if counts.uses_triggers():
        # Folded to one row per (type, state) with a non-zero sum, none for the deleted type.
        rows = list(StateCountDelta.objects.values_list("code_type_id", "state", "delta"))
        assert sorted(rows) == sorted(
            (type_id, state, n)
            for type_id, per_state in before.items()
            for state, n in per_state.items()
            if n
        )
