"""Fulfilment by a synchronous webhook: signing, replies, payload; a real HTTP server."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption import fulfillment
from redemption.models import CodeType, SharedRedemption, State
from redemption.services import code_type_rotate_secret, redeem
from redemption.services.code_types import new_webhook_secret
from tests.fulfilment import (
    ACCEPTED,
    ANN,
    DOCUMENTED_PAYLOAD_KEYS,
    DONE,
    SYSTEM,
    TX,
    add_code,
    attempts_of,
    make_type,
    scan_of,
)
from tests.webhook import closed_port_url

# --- signing ----------------------------------------------------------------------------------


def test_signature_verifies_only_the_same_secret_body_and_recent_time():
    secret, body = new_webhook_secret(), b'{"a":1}'
    header = fulfillment.sign(secret, body)

    assert fulfillment.verify(secret, body, header)
    assert not fulfillment.verify(new_webhook_secret(), body, header)
    assert not fulfillment.verify(secret, b'{"a":2}', header)
    stale = fulfillment.sign(secret, body, int(time.time()) - 301)
    assert not fulfillment.verify(secret, body, stale)
    assert not fulfillment.verify(secret, body, "v1=abc")
    assert not fulfillment.verify(secret, body, "garbage")


# --- synchronous webhooks ---------------------------------------------------------------------


@TX
def test_sync_success_redeems_and_keeps_the_webhooks_info(webhook):
    webhook.behaviour = lambda _r: (200, {**DONE, "customRedemptionInfo": {"item": "sword-1"}})
    code = add_code(make_type(webhook.url))

    result = redeem(
        actor=SYSTEM, profile=ANN, scan_code=code.scan_code, custom_redemption_info={"note": "x"}
    )

    assert not result.in_progress
    code.refresh_from_db()
    assert code.state == State.REDEEMED
    assert code.current_attempt == 1
    assert code.redeemed_by_profile_id == ANN.id
    assert code.redeemed_at is not None
    assert code.custom_redemption_info == {"item": "sword-1"}
    [attempt] = attempts_of(code)
    assert attempt.state == State.REDEEMED
    assert attempt.finished_at is not None
    assert attempt.error_code is None
    assert attempt.response == {**DONE, "customRedemptionInfo": {"item": "sword-1"}}
    assert webhook.calls == 1
    assert webhook.seen[0].json["customRedemptionInfo"] == {"note": "x"}


@TX
def test_sync_success_false_fails_with_redemption_failed(webhook):
    webhook.behaviour = lambda _r: (
        200,
        {"success": False, "errorCode": "OUT_OF_STOCK", "errorMsg": "none left"},
    )
    code = add_code(make_type(webhook.url))

    with pytest.raises(exc.RedemptionFailedError) as caught:
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert caught.value.details["errorCode"] == "OUT_OF_STOCK"
    assert caught.value.details["errorMsg"] == "none left"
    code.refresh_from_db()
    assert code.state == State.FAILED
    assert code.redeemed_by_profile_id == ANN.id
    [attempt] = attempts_of(code)
    assert attempt.state == State.FAILED
    assert attempt.error_code == "REDEMPTION_FAILED"
    assert attempt.error_msg == "none left"
    assert attempt.response["errorCode"] == "OUT_OF_STOCK"


BAD_WEBHOOKS = {
    "down": (None, "transport error"),
    "http-500": (lambda _r: (500, {"success": True, "complete": True}), "HTTP 500"),
    "not-json": (lambda _r: (200, b"<html>oops</html>"), "malformed reply"),
    "json-array": (lambda _r: (200, b"[true]"), "malformed reply"),
    "success-as-string": (lambda _r: (200, {"success": "yes", "complete": True}), "malformed"),
    "complete-missing": (lambda _r: (200, {"success": True}), "malformed"),
    "redirect": (lambda _r: (302, b""), "HTTP 302"),
    "oversized": (lambda _r: (200, b" " * (65 * 1024)), "larger than 64 KB"),
    "sync-success-incomplete": (lambda _r: (200, ACCEPTED), "must reply complete:true"),
}


@TX
@pytest.mark.parametrize("case", list(BAD_WEBHOOKS))
def test_a_webhook_that_is_down_or_answers_badly_fails_with_script_failure(case, webhook):
    behaviour, message = BAD_WEBHOOKS[case]
    if behaviour is None:
        ct = make_type(closed_port_url())
    else:
        webhook.behaviour = behaviour
        ct = make_type(webhook.url)
    code = add_code(ct)

    with pytest.raises(exc.ScriptFailureError) as caught:
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert caught.value.http_status == 502
    code.refresh_from_db()
    assert code.state == State.FAILED
    [attempt] = attempts_of(code)
    assert attempt.state == State.FAILED
    assert attempt.error_code == "REDEMPTION_CODE_SCRIPT_FAILURE"
    assert message in attempt.error_msg


@TX
def test_a_webhook_slower_than_the_timeout_fails_within_the_timeout(webhook):
    def slow(_request):
        time.sleep(2)
        return 200, DONE

    webhook.behaviour = slow
    code = add_code(make_type(webhook.url, timeout=1))

    started = time.monotonic()
    with pytest.raises(exc.ScriptFailureError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert time.monotonic() - started < 1.8
    code.refresh_from_db()
    assert code.state == State.FAILED
    assert attempts_of(code)[0].error_msg == "no reply within 1 s"


# --- payload and signature --------------------------------------------------------------------


@TX
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_the_payload_has_exactly_the_fields_of_the_spec(shared, webhook):
    ct = make_type(webhook.url, shared=shared)
    code = None if shared else add_code(ct)

    redeem(
        actor=SYSTEM,
        profile=ANN,
        scan_code=scan_of(ct, code),
        custom_redemption_info={"platform": "ios"},
    )

    [seen] = webhook.seen
    body = seen.json
    assert set(body) == DOCUMENTED_PAYLOAD_KEYS
    record = code or SharedRedemption.objects.get(code_type=ct, profile_id=ANN.id)
    assert body == {
        "operation": "redeem",
        "scanCode": scan_of(ct, code),
        "redemptionCodeId": str(record.pk),
        "attempt": 1,
        "codeType": ct.name,
        "codeUseType": "MULTI" if shared else "SINGLE",
        "async": False,
        "customCodeInfo": {"reward": "sword"} if shared else {"gold": 100},
        "customRedemptionInfo": {"platform": "ios"},
        "profileId": "p-ann",
        "profileName": "Ann",
    }
    assert seen.headers["Content-Type"] == "application/json"


@TX
def test_after_rotation_calls_carry_both_signatures_until_the_grace_period_ends(webhook):
    ct = make_type(webhook.url)
    first, second, third = add_code(ct), add_code(ct), add_code(ct)
    old_secret = ct.webhook_secret
    assert old_secret.startswith("whsec_")

    redeem(actor=SYSTEM, profile=ANN, scan_code=first.scan_code)
    rotated = code_type_rotate_secret(actor=SYSTEM, name=ct.name)
    new_secret = rotated.webhook_secret
    redeem(actor=SYSTEM, profile=ANN, scan_code=second.scan_code)
    CodeType.objects.filter(pk=ct.pk).update(
        previous_secret_valid_until=timezone.now() - timedelta(seconds=1)
    )
    redeem(actor=SYSTEM, profile=ANN, scan_code=third.scan_code)

    before, during, after = (seen.headers[fulfillment.SIGNATURE_HEADER] for seen in webhook.seen)
    bodies = [seen.body for seen in webhook.seen]
    assert new_secret != old_secret
    assert rotated.previous_secret_valid_until is not None
    assert before.count("v1=") == 1 and during.count("v1=") == 2 and after.count("v1=") == 1
    assert fulfillment.verify(old_secret, bodies[0], before)
    assert not fulfillment.verify(new_secret, bodies[0], before)
    assert fulfillment.verify(new_secret, bodies[1], during)
    assert fulfillment.verify(old_secret, bodies[1], during)
    assert fulfillment.verify(new_secret, bodies[2], after)
    assert not fulfillment.verify(old_secret, bodies[2], after)


@TX
def test_with_no_grace_period_the_old_secret_stops_at_once(webhook, settings):
    settings.WEBHOOK_SECRET_GRACE_HOURS = 0
    ct = make_type(webhook.url)
    code = add_code(ct)
    old_secret = ct.webhook_secret

    new_secret = code_type_rotate_secret(actor=SYSTEM, name=ct.name).webhook_secret
    redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    [seen] = webhook.seen
    header = seen.headers[fulfillment.SIGNATURE_HEADER]
    assert fulfillment.verify(new_secret, seen.body, header)
    assert not fulfillment.verify(old_secret, seen.body, header)
