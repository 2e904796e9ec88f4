"""Inventory counts (trigger-kept on PostgreSQL) always equal a full GROUP BY of the rows."""

from collections import defaultdict

import pytest
from django.db import transaction
from django.db.models import Count

from redemption.actors import Profile
from redemption.db import counts
from redemption.models import STATE_ORDER, Code, CodeType, SharedRedemption
from redemption.services import (
    bulk,
    code_add,
    code_invalidate,
    code_reset,
    code_type_create,
    redeem,
    shared_redemption_delete,
)

pytestmark = pytest.mark.django_db


def counted_from_rows() -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATE_ORDER, 0))
    codes = Code.objects.filter(is_shared_anchor=False)
    for qs in (codes, SharedRedemption.objects.all()):
        for row in qs.values("code_type_id", "state").annotate(n=Count("*")).order_by():
            result[row["code_type_id"]][row["state"]] = row["n"]
    return {k: v for k, v in result.items() if any(v.values())}


def counted_fast() -> dict[int, dict[str, int]]:
    return {k: v for k, v in counts.by_type().items() if any(v.values())}


def test_counts_follow_every_kind_of_change(ops, system_actor):
    code_type_create(actor=ops, name="gift")
    code_type_create(actor=ops, name="promo", use_type="MULTI", scan_code="PROMO-2026")
    _, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name="gift", quantity=50, state="Available"
    )
    code_add(actor=ops, code_type_name="gift", scan_code="HAND-MADE-01")
    assert counted_fast() == counted_from_rows()

    for i, scan in enumerate(generated[:10]):
        redeem(actor=system_actor, profile=Profile(f"p{i}"), scan_code=scan)
    code_invalidate(actor=ops, scan_code=generated[10], reason="lost")
    code_reset(actor=ops, scan_code=generated[0], state="Inactive")
    for i in range(3):
        redeem(actor=system_actor, profile=Profile(f"fan{i}"), scan_code="promo 2026")
    shared_redemption_delete(actor=ops, code_type_name="promo", profile_id="fan0")
    assert counted_fast() == counted_from_rows()
    gift = CodeType.objects.get(name="gift").pk
    assert counted_fast()[gift]["Redeemed"] == 9

    counts.compact()
    assert counted_fast() == counted_from_rows()

    job = bulk.job_reset_codes_start(
        actor=ops,
        code_type_name="gift",
        states=["Redeemed"],
        to_state="Available",
        confirm_name="gift",
    )
    bulk.run_job(job.pk)
    job = bulk.job_delete_codes_start(
        actor=ops, code_type_name="gift", states=["Invalidated", "Inactive"], confirm_name="gift"
    )
    bulk.run_job(job.pk)
    assert counted_fast() == counted_from_rows()
    assert counted_fast()[gift] == dict.fromkeys(STATE_ORDER, 0) | {"Available": 48}

    CodeType.objects.filter(name="promo").delete()
    counts.compact()
    assert counted_fast() == counted_from_rows()


@pytest.mark.postgres
def test_the_count_fold_runs_once_per_slot_and_leaves_the_counts_unchanged(
    ops, system_actor, settings
):
    from datetime import UTC, datetime, timedelta

    from redemption.models import StateCountDelta
    from redemption.services import housekeeping

    settings.COUNT_FOLD_SECONDS = 5
    code_type_create(actor=ops, name="gift")
    _, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name="gift", quantity=30, state="Available"
    )
    for i, scan in enumerate(generated[:20]):
        redeem(actor=system_actor, profile=Profile(f"p{i}"), scan_code=scan)
    before = counted_fast()
    piled_up = StateCountDelta.objects.count()
    start = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // 5 * 5, UTC)

    first = housekeeping.count_fold_run(runner="w-1", now=start)
    same_slot = housekeeping.count_fold_run(runner="w-2", now=start + timedelta(seconds=4))
    redeem(actor=system_actor, profile=Profile("late"), scan_code=generated[20])
    next_slot = housekeeping.count_fold_run(runner="w-2", now=start + timedelta(seconds=5))

    assert piled_up > 20  # each redeem appended its own rows
    assert first == 2  # one row per (type, state): Available and Redeemed
    assert same_slot is None
    assert next_slot == 2
    assert StateCountDelta.objects.count() == 2
    assert counted_fast() == counted_from_rows()
    gift = CodeType.objects.get(name="gift").pk
    assert before[gift]["Redeemed"] == 20 and counted_fast()[gift]["Redeemed"] == 21


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_count_fold_vacuums_the_rows_it_folded(ops, system_actor, settings):
    from django.db import connection

    from redemption.services import housekeeping

    def vacuums() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = %s::regclass",
                ["redemption_statecountdelta"],
            )
            return cursor.fetchone()[0]

    code_type_create(actor=ops, name="gift")
    _, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name="gift", quantity=5, state="Available"
    )
    for i, scan in enumerate(generated):
        redeem(actor=system_actor, profile=Profile(f"p{i}"), scan_code=scan)
    before = vacuums()

    assert housekeeping.count_fold_run(runner="w-1") == 1  # (gift, Redeemed)
    assert vacuums() == before + 1
    assert counted_fast() == counted_from_rows()
    # Inside a transaction VACUUM cannot run: the fold alone (as the sweep's) still works.
    with transaction.atomic():
        assert counts.vacuum() is False
    assert counted_fast() == counted_from_rows()
