"""The example receiver (examples/receiver.py) against the real redeem path."""

from datetime import timedelta

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import Code, CodeType, State
from redemption.services import code_type_rotate_secret, process_async_response, redeem
from tests.fulfilment import ANN, SYSTEM, TX, add_code, attempts_of, make_type, wait_for
from tests.webhook import receiver_process


@TX
@pytest.mark.parametrize("mode", ["success", "slow"])
def test_example_receiver_grants_and_redeems(mode):
    ct = make_type("http://127.0.0.1:9/placeholder")
    with receiver_process("--secret", ct.webhook_secret, "--mode", mode, "--delay", "0.1") as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        code = add_code(ct)

        record = redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code).record

    assert record.state == State.REDEEMED
    assert record.custom_redemption_info == {"granted": True, "firstTime": True}


@TX
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("fail", exc.RedemptionFailedError),
        ("error", exc.ScriptFailureError),
        ("garbage", exc.ScriptFailureError),
    ],
)
def test_example_receiver_modes_that_fail(mode, error):
    ct = make_type("http://127.0.0.1:9/placeholder")
    with receiver_process("--secret", ct.webhook_secret, "--mode", mode) as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        code = add_code(ct)

        with pytest.raises(error) as caught:
            redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    if mode == "fail":
        assert caught.value.details["errorCode"] == "OUT_OF_STOCK"
    assert Code.objects.get(pk=code.pk).state == State.FAILED


@TX
def test_example_receiver_accepts_a_rotated_secret_only_during_its_grace_period():
    ct = make_type("http://127.0.0.1:9/placeholder")
    with receiver_process("--secret", ct.webhook_secret) as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        first, second, third = add_code(ct), add_code(ct), add_code(ct)
        assert redeem(actor=SYSTEM, profile=ANN, scan_code=first.scan_code).record.state == (
            State.REDEEMED
        )
        code_type_rotate_secret(actor=SYSTEM, name=ct.name)
        during = redeem(actor=SYSTEM, profile=ANN, scan_code=second.scan_code).record
        CodeType.objects.filter(pk=ct.pk).update(
            previous_secret_valid_until=timezone.now() - timedelta(seconds=1)
        )

        with pytest.raises(exc.ScriptFailureError):
            redeem(actor=SYSTEM, profile=ANN, scan_code=third.scan_code)

    assert during.state == State.REDEEMED
    assert attempts_of(third)[0].error_msg == "HTTP 401"


@TX
def test_example_receiver_in_async_mode_finishes_through_async_response(webhook):
    ct = make_type("http://127.0.0.1:9/placeholder", is_async=True, timeout=60)
    portal = webhook.url.removesuffix("/hook")
    with receiver_process(
        "--secret",
        ct.webhook_secret,
        "--mode",
        "async",
        "--delay",
        "0.05",
        "--portal-url",
        portal,
        "--server-key",
        "rk_example",
    ) as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        code = add_code(ct)

        result = redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)
        assert result.in_progress
        assert wait_for(lambda: webhook.calls == 1)

    [callback] = webhook.seen
    assert callback.path == f"/api/v1/server/redemptions/{code.pk}/async-response"
    assert callback.headers["Authorization"] == "Bearer rk_example"
    body = callback.json
    record = process_async_response(
        actor=SYSTEM,
        redemption_id=code.pk,
        attempt=body["attempt"],
        async_response=body["asyncResponse"],
    )
    assert record.state == State.REDEEMED
    assert record.custom_redemption_info == {"granted": True, "firstTime": True}
