"""Delete all / reset all codes of a type in chosen states."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import (
    STATE_ORDER,
    Attempt,
    AuditEvent,
    Code,
    CodeType,
    Job,
    SharedRedemption,
)
from redemption.services import bulk
from tests.bulk_helpers import fields_of
from tests.factories import CodeFactory, CodeTypeFactory, SharedRedemptionFactory


@pytest.fixture
def stocked_type(db):
    """A personal type with two codes in every state, attempts on the fulfilment states."""
    ct = CodeTypeFactory(name="stocked")
    now = timezone.now()
    for state in STATE_ORDER:
        for i in range(2):
            extra = {}
            if state in {"Redeemed", "InProgress", "Failed"}:
                extra = {"redeemed_by_profile_id": f"p-{i}", "current_attempt": 1}
            if state == "Redeemed":
                extra["redeemed_at"] = now
            if state == "Invalidated":
                extra.update(invalidated_at=now, invalidation_reason="lost")
            code = CodeFactory(code_type=ct, state=state, **extra)
            if state in {"InProgress", "Failed"}:
                Attempt.objects.create(
                    code=code,
                    attempt=1,
                    profile_id=f"p-{i}",
                    state=state,
                    started_at=now,
                    deadline_at=now + timedelta(minutes=5),
                )
    return ct


def test_the_preview_counts_each_state_in_one_query(stocked_type, django_assert_num_queries):
    CodeFactory(code_type=stocked_type, state="Available")

    with django_assert_num_queries(2):  # the type, then one GROUP BY
        counts = bulk.delete_reset_preview(code_type_name=stocked_type.name)

    assert counts == {
        "Inactive": 2,
        "Available": 3,
        "InProgress": 2,
        "Redeemed": 2,
        "Invalidated": 2,
        "Failed": 2,
    }


def test_delete_all_removes_only_the_chosen_states_in_batches(ops, stocked_type, settings):
    settings.JOB_BATCH_SIZE = 2
    other = CodeFactory(state="Available")

    job = bulk.job_delete_codes_start(
        actor=ops,
        code_type_name=stocked_type.name,
        states=["Failed", "Inactive", "Available"],
        confirm_name="stocked",
    )
    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.total == job.done == 6
    left = Counter(Code.objects.filter(code_type=stocked_type).values_list("state", flat=True))
    assert left == {"InProgress": 2, "Redeemed": 2, "Invalidated": 2}
    assert Attempt.objects.count() == 2  # the InProgress codes keep theirs
    assert Code.objects.filter(pk=other.pk).exists()
    event = AuditEvent.objects.get(action="codes.delete_all")
    assert event.actor_label == ops.label
    assert event.code_type_name == "stocked"
    assert event.details["states"] == ["Inactive", "Available", "Failed"]
    assert event.details["counts"] == {"Inactive": 2, "Available": 2, "Failed": 2}
    assert event.details["total"] == 6


def test_reset_all_clears_redemption_data_and_attempts(ops, stocked_type, settings):
    settings.JOB_BATCH_SIZE = 3

    job = bulk.job_reset_codes_start(
        actor=ops,
        code_type_name=stocked_type.name,
        states=["Redeemed", "InProgress", "Failed", "Invalidated"],
        to_state="Available",
        confirm_name="stocked",
    )
    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.total == job.done == 8
    counts = bulk.delete_reset_preview(code_type_name="stocked")
    assert counts == {
        "Inactive": 2,
        "Available": 10,
        "InProgress": 0,
        "Redeemed": 0,
        "Invalidated": 0,
        "Failed": 0,
    }
    assert not Attempt.objects.exists()
    reset = Code.objects.filter(code_type=stocked_type, version=2)
    assert reset.count() == 8
    for code in reset:
        assert code.redeemed_by_profile_id is None
        assert code.redeemed_at is None
        assert code.invalidated_at is None
        assert code.invalidation_reason is None
        assert code.current_attempt == 0
        assert code.activated_at is not None
    event = AuditEvent.objects.get(action="codes.reset_all")
    assert event.details["toState"] == "Available"
    assert event.details["counts"] == {
        "InProgress": 2,
        "Redeemed": 2,
        "Invalidated": 2,
        "Failed": 2,
    }


def test_reset_to_inactive_clears_the_activation_time(ops, code_type):
    code = CodeFactory(code_type=code_type, state="Available", activated_at=timezone.now())

    job = bulk.job_reset_codes_start(
        actor=ops,
        code_type_name=code_type.name,
        states=["Available"],
        to_state="Inactive",
        confirm_name=code_type.name,
    )
    bulk.run_job(job.pk)

    code.refresh_from_db()
    assert code.state == "Inactive"
    assert code.activated_at is None


@pytest.mark.parametrize("reset", [False, True])
def test_delete_or_reset_of_a_shared_type_removes_its_redemptions(ops, shared_type, reset):
    shared_type.max_redemptions = 10
    shared_type.redemption_count = 3
    shared_type.save()
    for state in ("Redeemed", "Redeemed", "InProgress"):
        sr = SharedRedemptionFactory(
            code_type=shared_type,
            state=state,
            redeemed_at=timezone.now() if state == "Redeemed" else None,
        )
    Attempt.objects.create(
        shared=sr,
        attempt=1,
        profile_id=sr.profile_id,
        started_at=timezone.now(),
        deadline_at=timezone.now(),
    )
    SharedRedemptionFactory(code_type=shared_type, state="Failed", redeemed_at=None)

    if reset:
        job = bulk.job_reset_codes_start(
            actor=ops,
            code_type_name=shared_type.name,
            states=["InProgress", "Failed"],
            to_state="Inactive",
            confirm_name=shared_type.name,
        )
    else:
        job = bulk.job_delete_codes_start(
            actor=ops,
            code_type_name=shared_type.name,
            states=["InProgress", "Failed"],
            confirm_name=shared_type.name,
        )
    bulk.run_job(job.pk)

    assert Job.objects.get(pk=job.pk).status == "succeeded"
    assert sorted(
        SharedRedemption.objects.filter(code_type=shared_type).values_list("state", flat=True)
    ) == ["Redeemed", "Redeemed"]
    assert not Attempt.objects.exists()
    assert CodeType.objects.get(pk=shared_type.pk).redemption_count == 2
    assert Code.objects.filter(code_type=shared_type, is_shared_anchor=True).exists()


@pytest.mark.parametrize("confirm", ["STOCKED", "stocked ", "", None, "other"])
def test_delete_all_needs_the_exact_type_name(ops, stocked_type, confirm):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_delete_codes_start(
            actor=ops, code_type_name="stocked", states=["Inactive"], confirm_name=confirm
        )

    assert set(fields_of(caught.value)) == {"confirm"}
    assert not Job.objects.exists()
    assert Code.objects.filter(code_type=stocked_type).count() == 12


@pytest.mark.parametrize(
    ("states", "to_state", "fields"),
    [
        ([], "Available", {"states"}),
        (["Lost"], "Available", {"states"}),
        ("Redeemed", "Available", {"states"}),
        (["Redeemed"], "Redeemed", {"toState"}),
        (["Redeemed"], None, {"toState"}),
    ],
)
def test_reset_all_rechecks_states_and_target(ops, stocked_type, states, to_state, fields):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_reset_codes_start(
            actor=ops,
            code_type_name="stocked",
            states=states,
            to_state=to_state,
            confirm_name="stocked",
        )

    assert set(fields_of(caught.value)) == fields
    assert not Job.objects.exists()


def test_delete_all_of_an_unknown_type_is_not_found(ops):
    with pytest.raises(exc.CodeTypeNotFoundError):
        bulk.job_delete_codes_start(
            actor=ops, code_type_name="ghost", states=["Inactive"], confirm_name="ghost"
        )
