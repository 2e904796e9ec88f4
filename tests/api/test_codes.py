"""Server operations on single codes, async responses and the redeemed-codes lists."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from redemption.models import Attempt, AuditEvent, Code, State
from tests.api.conftest import mint
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

CODES = "/api/v1/server/codes"


def _is(response, status, code):
    assert (response.status, response.code) == (status, code), response.json()


# --- add --------------------------------------------------------------------------------------


def test_add_a_code_inactive_by_default(server_api):
    ct = CodeTypeFactory()

    response = server_api.post(CODES, {"scanCode": "gift-0001-aaaa", "codeType": ct.name})

    assert response.status == 201
    body = response.json()
    assert (body["scanCode"], body["codeState"], body["codeType"]) == (
        "GIFT-0001-AAAA",
        "Inactive",
        ct.name,
    )
    assert body["batchId"] is not None
    assert Code.objects.get().canonical == "G1FT0001AAAA"


def test_add_a_code_available_with_custom_info(server_api):
    ct = CodeTypeFactory()
    response = server_api.post(
        CODES,
        {
            "scanCode": "ABCD-0002",
            "codeType": ct.name,
            "codeState": "Available",
            "customCodeInfo": {"sku": "X1"},
        },
    )
    assert response.json()["codeState"] == "Available"
    assert response.json()["customCodeInfo"] == {"sku": "X1"}
    assert response.json()["activatedAt"] is not None


def test_add_refusals(server_api):
    ct = CodeTypeFactory()
    shared = SharedCodeTypeFactory()
    CodeFactory(scan_code="TAKEN-0001")

    _is(server_api.post(CODES, {"scanCode": "a!", "codeType": ct.name}), 400, "INVALID_SCAN_CODE")
    _is(
        server_api.post(CODES, {"scanCode": "ABCD-9999", "codeType": "nope"}),
        404,
        "REDEMPTION_CODE_TYPE_NOT_FOUND",
    )
    _is(
        server_api.post(CODES, {"scanCode": "ABCD-9999", "codeType": shared.name}),
        409,
        "REDEMPTION_CODE_TYPE_MUST_BE_SINGLE_USE",
    )
    _is(
        server_api.post(CODES, {"scanCode": "taken 0001", "codeType": ct.name}),
        409,
        "REDEMPTION_CODE_DUPLICATE",
    )
    bad_state = server_api.post(
        CODES, {"scanCode": "ABCD-9999", "codeType": ct.name, "codeState": "Redeemed"}
    )
    _is(bad_state, 400, "INVALID_PARAMETER_VALUE")
    assert list(bad_state.error["details"]["fields"]) == ["codeState"]
    too_long = server_api.post(CODES, {"scanCode": "-".join("A" * 64), "codeType": ct.name})
    assert list(too_long.error["details"]["fields"]) == ["scanCode"]
    assert Code.objects.filter(code_type=ct).count() == 0


# --- look up ------------------------------------------------------------------------------------


def test_look_up_a_code_with_attempts_and_history(server_api):
    ct = CodeTypeFactory()
    server_api.post(CODES, {"scanCode": "LOOK-0001", "codeType": ct.name})
    server_api.post(f"{CODES}/LOOK-0001/activate", {"codeType": ct.name})
    code = Code.objects.get(canonical="100K0001")
    Attempt.objects.create(
        code=code,
        attempt=1,
        profile_id="p-1",
        state=State.FAILED,
        started_at=timezone.now(),
        deadline_at=timezone.now(),
        finished_at=timezone.now(),
        error_code="REDEMPTION_FAILED",
        error_msg="no",
        response={"success": False},
    )

    response = server_api.get(f"{CODES}/look%200001")

    body = response.json()
    assert response.status == 200
    assert [e["action"] for e in body["history"]] == ["code.add", "code.activate"]
    assert body["attempts"][0]["errorCode"] == "REDEMPTION_FAILED"


def test_look_up_refusals(server_api):
    _is(server_api.get(f"{CODES}/a!"), 400, "INVALID_SCAN_CODE")
    _is(server_api.get(f"{CODES}/ABCD-EFGH"), 404, "REDEMPTION_CODE_NOT_FOUND")


# --- activate / invalidate ----------------------------------------------------------------------


def test_activate_an_inactive_code_with_new_custom_info(server_api):
    code = CodeFactory(state=State.INACTIVE)

    response = server_api.post(
        f"{CODES}/{code.scan_code}/activate",
        {"codeType": code.code_type.name, "customCodeInfo": {"store": 12}},
    )

    assert response.status == 200
    assert response.json()["codeState"] == "Available"
    assert response.json()["customCodeInfo"] == {"store": 12}
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (State.AVAILABLE, "REDEMPTION_CODE_ACTIVE"),
        (State.INVALIDATED, "REDEMPTION_CODE_INVALID"),
        (State.REDEEMED, "REDEMPTION_CODE_REDEEMED"),
        (State.IN_PROGRESS, "REDEMPTION_IN_PROGRESS"),
        (State.FAILED, "REDEMPTION_FAILED"),
    ],
)
def test_activate_refuses_codes_that_are_not_inactive(server_api, state, code):
    row = CodeFactory(
        state=state, redeemed_by_profile_id="p-1", redeemed_at=timezone.now(), current_attempt=1
    )
    response = server_api.post(
        f"{CODES}/{row.scan_code}/activate", {"codeType": row.code_type.name}
    )
    _is(response, 409, code)


def test_activate_and_invalidate_check_the_code_and_its_type(server_api):
    code = CodeFactory(state=State.INACTIVE)
    other = CodeTypeFactory()
    for action in ["activate", "invalidate"]:
        _is(
            server_api.post(f"{CODES}/{code.scan_code}/{action}", {"codeType": other.name}),
            409,
            "REDEMPTION_CODE_TYPE_MISMATCH",
        )
        _is(
            server_api.post(f"{CODES}/{code.scan_code}/{action}", {"codeType": "nope"}),
            404,
            "REDEMPTION_CODE_TYPE_NOT_FOUND",
        )
        _is(
            server_api.post(f"{CODES}/ZZZZ-ZZZZ/{action}", {"codeType": other.name}),
            404,
            "REDEMPTION_CODE_NOT_FOUND",
        )
        _is(
            server_api.post(f"{CODES}/a!/{action}", {"codeType": other.name}),
            400,
            "INVALID_SCAN_CODE",
        )
        missing = server_api.post(f"{CODES}/{code.scan_code}/{action}", {})
        assert missing.error["details"]["fields"] == {"codeType": "is required"}


def test_invalidate_stores_the_reason(server_api):
    code = CodeFactory(state=State.AVAILABLE)

    response = server_api.post(
        f"{CODES}/{code.scan_code}/invalidate",
        {"codeType": code.code_type.name, "invalidationReason": "stolen"},
    )

    assert response.status == 200
    assert (response.json()["codeState"], response.json()["invalidationReason"]) == (
        "Invalidated",
        "stolen",
    )


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (State.REDEEMED, "REDEMPTION_CODE_REDEEMED"),
        (State.INVALIDATED, "REDEMPTION_CODE_INVALID"),
        (State.IN_PROGRESS, "REDEMPTION_IN_PROGRESS"),
    ],
)
def test_invalidate_refusals(server_api, state, code):
    row = CodeFactory(state=state, redeemed_by_profile_id="p-1", redeemed_at=timezone.now())
    response = server_api.post(
        f"{CODES}/{row.scan_code}/invalidate", {"codeType": row.code_type.name}
    )
    _is(response, 409, code)


def test_invalidation_reason_is_at_most_1000_characters(server_api):
    code = CodeFactory()
    response = server_api.post(
        f"{CODES}/{code.scan_code}/invalidate",
        {"codeType": code.code_type.name, "invalidationReason": "x" * 1001},
    )
    assert list(response.error["details"]["fields"]) == ["invalidationReason"]


# --- custom info --------------------------------------------------------------------------------


def test_replace_custom_info_at_the_current_version(server_api):
    code = CodeFactory(custom_code_info={"a": 1})
    url = f"{CODES}/{code.scan_code}/custom-info"

    response = server_api.put(
        url, {"codeType": code.code_type.name, "version": 1, "customCodeInfo": {"b": 2}}
    )
    stale = server_api.put(
        url, {"codeType": code.code_type.name, "version": 1, "customCodeInfo": {"c": 3}}
    )

    assert response.status == 200
    assert response.json()["customCodeInfo"] == {"b": 2}
    _is(stale, 409, "REDEMPTION_CODE_VERSION_MISMATCH")
    assert stale.error["details"]["version"] == 2


def test_custom_info_refusals(server_api):
    code = CodeFactory(code_type=CodeTypeFactory(is_disabled=True))
    other = CodeTypeFactory()
    url = f"{CODES}/{code.scan_code}/custom-info"
    body = {"codeType": code.code_type.name, "version": 1, "customCodeInfo": {}}

    _is(server_api.put(url, body), 409, "REDEMPTION_CODE_TYPE_DISABLED")
    _is(server_api.put(url, {**body, "codeType": other.name}), 409, "REDEMPTION_CODE_TYPE_MISMATCH")
    _is(server_api.put(f"{CODES}/ZZZZ-0000/custom-info", body), 404, "REDEMPTION_CODE_NOT_FOUND")
    _is(server_api.put(f"{CODES}/a!/custom-info", body), 400, "INVALID_SCAN_CODE")
    missing = server_api.put(url, {"codeType": code.code_type.name, "customCodeInfo": []})
    assert set(missing.error["details"]["fields"]) == {"version", "customCodeInfo"}
    _is(server_api.put(url, {**body, "codeType": "nope"}), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")


# --- async responses ----------------------------------------------------------------------------


def _in_progress(*, deadline: timedelta = timedelta(hours=1), is_async: bool = True) -> Code:
    ct = CodeTypeFactory(
        fulfillment_url="http://127.0.0.1:9/hook",
        fulfillment_async=is_async,
        webhook_secret="whsec_test",
        fulfillment_timeout_seconds=3600,
    )
    code = CodeFactory(
        code_type=ct, state=State.IN_PROGRESS, current_attempt=1, redeemed_by_profile_id="p-1"
    )
    now = timezone.now()
    Attempt.objects.create(
        code=code, attempt=1, profile_id="p-1", started_at=now, deadline_at=now + deadline
    )
    return code


def _async(server_api, rid, attempt=1, reply=None):
    return server_api.post(
        f"/api/v1/server/redemptions/{rid}/async-response",
        {"attempt": attempt, "asyncResponse": reply or {"success": True, "complete": True}},
    )


def test_an_async_success_redeems_the_code(server_api):
    code = _in_progress()

    response = _async(server_api, code.pk)

    assert response.status == 200
    assert response.json()["codeState"] == "Redeemed"
    assert Attempt.objects.get(code=code).state == State.REDEEMED


def test_an_async_failure_fails_the_code_and_answers_the_record(server_api):
    code = _in_progress()
    response = _async(server_api, code.pk, reply={"success": False, "errorMsg": "declined"})
    assert response.status == 200
    assert response.json()["codeState"] == "Failed"


def test_async_response_refusals(server_api):
    code = _in_progress()
    _is(_async(server_api, uuid.uuid4()), 404, "REDEMPTION_CODE_BY_ID_NOT_FOUND")
    _is(_async(server_api, "not-a-uuid"), 404, "REDEMPTION_CODE_BY_ID_NOT_FOUND")
    _is(_async(server_api, code.pk, attempt=2), 409, "REDEMPTION_CODE_ATTEMPT_MISMATCH")
    _is(
        _async(server_api, code.pk, reply={"complete": True}),
        400,
        "REDEMPTION_CODE_ASYNC_BAD_RESPONSE",
    )
    sync = _in_progress(is_async=False)
    _is(_async(server_api, sync.pk), 409, "REDEMPTION_CODE_TYPE_NOT_ASYNC")
    assert _async(server_api, code.pk).status == 200
    _is(_async(server_api, code.pk), 409, "REDEMPTION_CODE_NOT_IN_PROGRESS")
    wrong = server_api.post(
        f"/api/v1/server/redemptions/{code.pk}/async-response",
        {"attempt": "1", "asyncResponse": "yes"},
    )
    assert set(wrong.error["details"]["fields"]) == {"attempt", "asyncResponse"}


def test_an_async_response_after_the_window_is_a_timeout(server_api):
    code = _in_progress(deadline=-timedelta(seconds=1))

    response = _async(server_api, code.pk)

    _is(response, 409, "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT")
    assert Code.objects.get(pk=code.pk).state == State.FAILED


# --- lists --------------------------------------------------------------------------------------


def test_clients_list_only_their_redeemed_codes_newest_first(api, user_api):
    first, second = CodeFactory(), CodeFactory()
    others = CodeFactory()
    assert user_api.post("/api/v1/client/redeem", {"scanCode": first.scan_code}).status == 200
    assert user_api.post("/api/v1/client/redeem", {"scanCode": second.scan_code}).status == 200
    api.as_(mint("p-other")).post("/api/v1/client/redeem", {"scanCode": others.scan_code})
    CodeFactory(state=State.FAILED, redeemed_by_profile_id="p-42", current_attempt=1)

    response = user_api.get("/api/v1/client/redeemed-codes")

    ids = [c["redemptionCodeId"] for c in response.json()["codes"]]
    assert ids == [str(second.pk), str(first.pk)]
    filtered = user_api.get(f"/api/v1/client/redeemed-codes?codeType={first.code_type.name}")
    assert [c["redemptionCodeId"] for c in filtered.json()["codes"]] == [str(first.pk)]
    _is(
        user_api.get("/api/v1/client/redeemed-codes?codeType=nope"),
        404,
        "REDEMPTION_CODE_TYPE_NOT_FOUND",
    )


def test_servers_list_everything_a_profile_holds(server_api, user_api):
    redeemed = CodeFactory()
    user_api.post("/api/v1/client/redeem", {"scanCode": redeemed.scan_code})
    failed = CodeFactory(state=State.FAILED, redeemed_by_profile_id="p-42", current_attempt=1)
    shared = SharedCodeTypeFactory()
    user_api.post("/api/v1/client/redeem", {"scanCode": shared.scan_code})

    response = server_api.get("/api/v1/server/profiles/p-42/redeemed-codes")

    states = {c["redemptionCodeId"]: c["codeState"] for c in response.json()["codes"]}
    assert states[str(redeemed.pk)] == "Redeemed"
    assert states[str(failed.pk)] == "Failed"
    assert len(states) == 3
    by_type = server_api.get(
        f"/api/v1/server/profiles/p-42/redeemed-codes?codeType={shared.name}"
    ).json()["codes"]
    assert [c["codeUseType"] for c in by_type] == ["MULTI"]


def test_server_list_refusals(server_api):
    too_long = server_api.get(f"/api/v1/server/profiles/{'x' * 129}/redeemed-codes")
    assert too_long.error["details"]["fields"] == {"profileId": "1-128 characters"}
    _is(
        server_api.get("/api/v1/server/profiles/p-1/redeemed-codes?codeType=nope"),
        404,
        "REDEMPTION_CODE_TYPE_NOT_FOUND",
    )
    assert server_api.get("/api/v1/server/profiles/nobody/redeemed-codes").json() == {
        "codes": [],
        "nextCursor": None,
    }


def test_every_server_write_is_audited_as_the_server_key(server_api):
    ct = CodeTypeFactory()
    server_api.post(CODES, {"scanCode": "AUDIT-0001", "codeType": ct.name})
    event = AuditEvent.objects.get(action="code.add")
    assert event.actor_kind == "server_key"
    assert event.actor_label == "server key backend"
