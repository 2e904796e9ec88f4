"""Data and helpers the portal tests share (browser and Django test client)."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from redemption.actors import Actor
from redemption.models import Attempt, Batch, Code, Job, State
from redemption.services import code_invalidate, code_type_create
from tests.factories import CodeFactory, SharedRedemptionFactory


@pytest.fixture(autouse=True)
def role_groups(transactional_db: Any) -> None:
    """Re-create the role groups: a transactional test's flush removed the migration's rows."""
    for name in ("Viewer", "Support", "Ops"):
        Group.objects.get_or_create(name=name)


HOSTILE = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'


def populate(*, codes: int = 3, hostile: str = "plain") -> dict[str, Any]:
    """A personal type, a batch, codes in several states, an attempt, a job, a shared type."""
    system = Actor.system("test")
    now = timezone.now()
    ct = code_type_create(
        actor=system,
        name="xmas-2026",
        description=f"Gift cards {hostile}",
        fulfillment={
            "url": "https://shop.example/hook",
            "async": False,
            "maxRetries": 2,
            "timeoutSeconds": 10,
        },
    )
    batch = Batch.objects.create(
        code_type=ct,
        kind=Batch.Kind.GENERATE,
        quantity=codes,
        created_at=now,
        created_by="test",
        algorithm="Crockford",
        length=12,
    )
    made = [
        CodeFactory(
            code_type=ct,
            batch=batch,
            state=State.AVAILABLE,
            custom_code_info={"note": hostile, "n": i},
        )
        for i in range(codes)
    ]
    redeemed = CodeFactory(
        code_type=ct,
        batch=batch,
        state=State.REDEEMED,
        redeemed_by_profile_id="p-42",
        redeemed_by_profile_name=f"Ann {hostile}",
        redeemed_at=now - timedelta(days=1),
        custom_code_info={"note": hostile},
    )
    failed = CodeFactory(
        code_type=ct,
        batch=batch,
        state=State.FAILED,
        redeemed_by_profile_id="p-42",
        redeemed_by_profile_name=f"Ann {hostile}",
        current_attempt=1,
    )
    Attempt.objects.create(
        code=failed,
        attempt=1,
        profile_id="p-42",
        profile_name="Ann",
        state=State.FAILED,
        started_at=now,
        deadline_at=now + timedelta(seconds=10),
        finished_at=now,
        error_code="REDEMPTION_FAILED",
        error_msg=f"out of stock {hostile}",
        response={"success": False, "errorMsg": hostile},
    )
    invalid = CodeFactory(code_type=ct, batch=batch, state=State.AVAILABLE)
    code_invalidate(actor=system, scan_code=invalid.scan_code, reason=f"stolen {hostile}")
    shared = code_type_create(
        actor=system, name="freestuff", use_type="MULTI", scan_code="FREESTUFF", description=hostile
    )
    SharedRedemptionFactory(code_type=shared, profile_id="p-42", profile_name=f"Ann {hostile}")
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        code_type=ct,
        code_type_name=ct.name,
        batch=batch,
        status=Job.Status.SUCCEEDED,
        total=10,
        done=10,
        created_at=now,
        created_by="test",
        errors=[{"line": 3, "scanCode": "BAD", "code": "INVALID_SCAN_CODE", "message": hostile}],
        error_count=1,
    )
    return {
        "ct": ct,
        "shared": shared,
        "batch": batch,
        "codes": made,
        "redeemed": redeemed,
        "failed": failed,
        "invalid": invalid,
        "job": job,
    }


def more_rows(data: dict[str, Any], n: int) -> None:
    """Add n more of every listed thing, to prove list pages do not grow queries with rows."""
    ct, batch = data["ct"], data["batch"]
    now = timezone.now()
    for i in range(n):
        code = CodeFactory(
            code_type=ct,
            batch=batch,
            state=State.FAILED,
            redeemed_by_profile_id="p-42",
            redeemed_at=None,
            current_attempt=1,
        )
        Attempt.objects.create(
            code=code,
            attempt=1,
            profile_id="p-42",
            state=State.FAILED,
            started_at=now,
            deadline_at=now,
            finished_at=now,
            error_code="X",
            error_msg="y",
        )
        Batch.objects.create(code_type=ct, kind=Batch.Kind.IMPORT, created_at=now)
        Job.objects.create(
            kind=Job.Kind.GENERATE,
            code_type=ct,
            code_type_name=ct.name,
            total=5,
            done=i,
            created_at=now,
        )
        Code.objects.filter(pk=code.pk).update(state=State.FAILED)
        code_invalidate(actor=Actor.system("t"), scan_code=code.scan_code, reason=f"r{i}")


def sign_in(page: Any, base_url: str, user: Any) -> None:
    """Sign in through the real form (the fixtures' password is pw-<username>-123!)."""
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(f"pw-{user.username}-123!")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")


def make_type_with_job(user: Any, *, quantity: int = 20) -> Job:
    """A personal type with a webhook, and a queued job generating `quantity` codes for it."""
    from redemption.services import bulk

    actor = Actor.staff(user)
    code_type_create(
        actor=actor,
        name="autumn",
        fulfillment={
            "url": "https://shop.example/hook",
            "async": True,
            "maxRetries": 1,
            "timeoutSeconds": 60,
        },
    )
    return bulk.job_generate_start(
        actor=actor, code_type_name="autumn", quantity=quantity, state="Available"
    )
