"""Helpers shared by the fulfilment tests: types with webhooks, outcomes, threads, deadlines."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.models import Attempt, Code, CodeType, SharedRedemption, State
from redemption.services import code_type_create, redeem
from tests.factories import CodeFactory
from tests.webhook import WebhookServer

TX = pytest.mark.django_db(transaction=True)
SYSTEM = Actor.system("test")
ANN = Profile("p-ann", "Ann")
BOB = Profile("p-bob", "Bob")
DONE = {"success": True, "complete": True}
ACCEPTED = {"success": True, "complete": False}
DOCUMENTED_PAYLOAD_KEYS = {
    "operation",
    "scanCode",
    "redemptionCodeId",
    "attempt",
    "codeType",
    "codeUseType",
    "async",
    "customCodeInfo",
    "customRedemptionInfo",
    "profileId",
    "profileName",
}


_names = iter(range(10**6))


def make_type(
    url: str,
    *,
    shared: bool = False,
    is_async: bool = False,
    max_retries: int = 0,
    timeout: int = 10,
    max_redemptions: int | None = None,
) -> CodeType:
    n = next(_names)
    return code_type_create(
        actor=SYSTEM,
        name=f"ful-{n}",
        use_type="MULTI" if shared else "SINGLE",
        scan_code=f"SHARED-FUL-{n:04d}" if shared else None,
        max_redemptions=max_redemptions,
        custom_code_info={"reward": "sword"},
        fulfillment={
            "url": url,
            "async": is_async,
            "maxRetries": max_retries,
            "timeoutSeconds": timeout,
        },
    )


def add_code(ct: CodeType) -> Code:
    return CodeFactory(code_type=ct, state=State.AVAILABLE, custom_code_info={"gold": 100})


def scan_of(ct: CodeType, code: Code | None) -> str:
    return code.scan_code if code is not None else ct.scan_code


def outcome(call: Callable[[], Any]) -> str:
    """The record's state after `call`, or the code of the domain error it raised."""
    try:
        result = call()
    except exc.RedemptionError as err:
        return err.code
    record = getattr(result, "record", result)
    return record.state


def attempts_of(record: Code | SharedRedemption) -> list[Attempt]:
    field = "shared" if isinstance(record, SharedRedemption) else "code"
    return list(Attempt.objects.filter(**{field: record}).order_by("attempt"))


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run fn in a thread with its own DB connection (closed at the end); collect its outcome."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["outcome"] = outcome(fn)
        except BaseException as err:  # surfaced by the test's assertions
            out["crash"] = err
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def wait_for(predicate: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def move_deadline_to_past(record: Code | SharedRedemption) -> None:
    """Given the attempt window has passed (without sleeping through it)."""
    field = "shared" if isinstance(record, SharedRedemption) else "code"
    Attempt.objects.filter(**{field: record}, state=State.IN_PROGRESS).update(
        deadline_at=timezone.now() - timedelta(seconds=1)
    )


def start_async(webhook: WebhookServer, *, shared: bool = False, **type_options: Any):
    """Given an async type whose webhook accepts; ANN's redeem is left InProgress."""
    webhook.behaviour = lambda _r: (200, {**ACCEPTED, "customRedemptionInfo": {"ticket": "T-1"}})
    ct = make_type(webhook.url, shared=shared, is_async=True, **type_options)
    code = None if shared else add_code(ct)
    result = redeem(actor=SYSTEM, profile=ANN, scan_code=scan_of(ct, code))
    assert result.in_progress
    return ct, result.record
