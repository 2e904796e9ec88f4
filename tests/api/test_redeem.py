"""POST /api/v1/client/redeem and /api/v1/server/redeem: outcomes and every refusal."""

from datetime import timedelta

import pytest
from django.utils import timezone

from redemption.models import AuditEvent, Code, CodeType, RedeemFailure, SharedRedemption, State
from tests.api.conftest import mint
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

CLIENT = "/api/v1/client/redeem"
SERVER = "/api/v1/server/redeem"


def _fulfilled_type(url: str, **extra) -> CodeType:
    return CodeTypeFactory(fulfillment_url=url, webhook_secret="whsec_test", **extra)


# --- success ---------------------------------------------------------------------------------


def test_client_redeems_an_available_code_by_any_spelling(user_api):
    code = CodeFactory(scan_code="K7QM-3XJ9-ABCD")

    response = user_api.post(CLIENT, {"scanCode": "k7qm 3xj9 abcd"})

    assert response.status == 200
    body = response.json()
    assert body["redemptionCodeId"] == str(code.pk)
    assert body["codeState"] == "Redeemed"
    assert body["redeemedByProfileId"] == "p-42"
    assert body["redeemedByProfileName"] == "Ann"
    event = AuditEvent.objects.get(action="code.redeem")
    assert (event.actor_kind, event.actor_id) == ("profile", "p-42")


def test_client_redeem_stores_custom_redemption_info_and_checks_the_type(user_api):
    code = CodeFactory()

    response = user_api.post(
        CLIENT,
        {
            "scanCode": code.scan_code,
            "codeType": code.code_type.name,
            "customRedemptionInfo": {"orderId": 7},
        },
    )

    assert response.status == 200
    assert response.json()["customRedemptionInfo"] == {"orderId": 7}


def test_client_redeems_a_shared_code_once_per_profile(api):
    shared = SharedCodeTypeFactory(scan_code="FREESTUFF")

    first = api.as_(mint("p-1")).post(CLIENT, {"scanCode": "freestuff"})
    second = api.as_(mint("p-2")).post(CLIENT, {"scanCode": "FREE STUFF"})

    assert (first.status, second.status) == (200, 200)
    assert first.json()["codeUseType"] == "MULTI"
    assert SharedRedemption.objects.filter(code_type=shared).count() == 2


def test_server_redeems_on_behalf_of_a_profile(server_api):
    code = CodeFactory()

    response = server_api.post(
        SERVER, {"profileId": "p-9", "profileName": "Bo", "scanCode": code.scan_code}
    )

    assert response.status == 200
    assert response.json()["redeemedByProfileId"] == "p-9"
    assert AuditEvent.objects.get(action="code.redeem").actor_kind == "server_key"


# --- refusals that need no webhook ------------------------------------------------------------


class Redeemer:
    """Posts redeem bodies for profile p-42, as the client app or as its backend."""

    def __init__(self, api, kind: str) -> None:
        self.api, self.kind = api, kind

    def post(self, body, **kwargs):
        if self.kind == "client":
            return self.api.as_(mint()).post(CLIENT, body, **kwargs)
        return self.api.post(SERVER, {"profileId": "p-42", "profileName": "Ann", **body}, **kwargs)


@pytest.fixture(params=["client", "server"])
def redeemer(request, api, server_secret) -> Redeemer:
    """Each refusal below is checked on both redeem endpoints."""
    server = api.as_(server_secret)
    return Redeemer(api if request.param == "client" else server, request.param)


def _refusal(redeemer, body, status, code):
    response = redeemer.post(body)
    assert (response.status, response.code) == (status, code), response.json()
    return response


def test_a_malformed_scan_code_is_invalid_scan_code(redeemer):
    _refusal(redeemer, {"scanCode": "a!"}, 400, "INVALID_SCAN_CODE")


def test_an_unknown_code_is_not_found(redeemer):
    _refusal(redeemer, {"scanCode": "NOPE-NOPE-NOPE"}, 404, "REDEMPTION_CODE_NOT_FOUND")


def test_an_unknown_code_type_is_type_not_found(redeemer):
    code = CodeFactory()
    _refusal(
        redeemer,
        {"scanCode": code.scan_code, "codeType": "no-such-type"},
        404,
        "REDEMPTION_CODE_TYPE_NOT_FOUND",
    )


def test_another_types_name_is_a_type_mismatch(redeemer):
    code = CodeFactory()
    other = CodeTypeFactory()
    _refusal(
        redeemer,
        {"scanCode": code.scan_code, "codeType": other.name},
        409,
        "REDEMPTION_CODE_TYPE_MISMATCH",
    )


def test_a_disabled_type_refuses(redeemer):
    code = CodeFactory(code_type=CodeTypeFactory(is_disabled=True))
    _refusal(redeemer, {"scanCode": code.scan_code}, 409, "REDEMPTION_CODE_TYPE_DISABLED")


def test_before_the_window_is_not_yet_valid_and_after_it_expired(redeemer):
    now = timezone.now()
    early = CodeFactory(code_type=CodeTypeFactory(valid_start=now + timedelta(days=1)))
    late = CodeFactory(code_type=CodeTypeFactory(valid_end=now - timedelta(days=1)))
    _refusal(redeemer, {"scanCode": early.scan_code}, 409, "REDEMPTION_CODE_NOT_YET_VALID")
    _refusal(redeemer, {"scanCode": late.scan_code}, 409, "REDEMPTION_CODE_EXPIRED")


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (State.INACTIVE, "REDEMPTION_CODE_NOT_ACTIVE"),
        (State.INVALIDATED, "REDEMPTION_CODE_INVALID"),
        (State.IN_PROGRESS, "REDEMPTION_IN_PROGRESS"),
        (State.FAILED, "REDEMPTION_FAILED"),
    ],
)
def test_a_code_in_a_state_that_cannot_be_redeemed_says_why(redeemer, state, code):
    row = CodeFactory(state=state, redeemed_by_profile_id="p-1", current_attempt=1)
    _refusal(redeemer, {"scanCode": row.scan_code}, 409, code)


def test_redeeming_again_is_redeemed_by_self_with_the_record(redeemer):
    code = CodeFactory()
    assert redeemer.post({"scanCode": code.scan_code}).status == 200

    response = _refusal(
        redeemer, {"scanCode": code.scan_code}, 409, "REDEMPTION_CODE_REDEEMED_BY_SELF"
    )

    record = response.error["details"]["record"]
    assert record["redemptionCodeId"] == str(code.pk)
    assert record["codeState"] == "Redeemed"


def test_a_shared_code_redeemed_again_is_redeemed_by_self(redeemer):
    SharedCodeTypeFactory(scan_code="ONCEONLY")
    assert redeemer.post({"scanCode": "ONCEONLY"}).status == 200
    response = _refusal(redeemer, {"scanCode": "ONCEONLY"}, 409, "REDEMPTION_CODE_REDEEMED_BY_SELF")
    assert response.error["details"]["record"]["codeUseType"] == "MULTI"


def test_someone_elses_code_is_redeemed_by_other(api, redeemer):
    code = CodeFactory()
    assert api.as_(mint("p-other")).post(CLIENT, {"scanCode": code.scan_code}).status == 200
    _refusal(redeemer, {"scanCode": code.scan_code}, 409, "REDEMPTION_CODE_REDEEMED_BY_OTHER")


def test_a_full_shared_code_is_max_redemptions_reached(api, redeemer):
    SharedCodeTypeFactory(scan_code="ONLYONE1", max_redemptions=1)
    assert api.as_(mint("p-first")).post(CLIENT, {"scanCode": "ONLYONE1"}).status == 200
    _refusal(redeemer, {"scanCode": "ONLYONE1"}, 409, "MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED")


def test_a_failed_code_of_another_profile_is_attempted_by_mismatch(redeemer):
    ct = _fulfilled_type("http://127.0.0.1:9/hook", fulfillment_max_retries=3)
    code = CodeFactory(
        code_type=ct, state=State.FAILED, redeemed_by_profile_id="p-1", current_attempt=1
    )
    _refusal(
        redeemer,
        {"scanCode": code.scan_code},
        409,
        "REDEMPTION_CODE_ATTEMPTED_BY_REDEEMED_BY_MISMATCH",
    )


def test_a_failed_code_without_retries_left_is_max_retries(redeemer):
    ct = _fulfilled_type("http://127.0.0.1:9/hook", fulfillment_max_retries=0)
    code = CodeFactory(
        code_type=ct, state=State.FAILED, redeemed_by_profile_id="p-42", current_attempt=1
    )
    _refusal(redeemer, {"scanCode": code.scan_code}, 409, "REDEMPTION_FAILED_MAX_RETRIES")


def test_a_check_character_typo_is_invalid_scan_code(server_api, redeemer):
    ct = CodeTypeFactory()
    made = server_api.post(
        f"/api/v1/server/code-types/{ct.name}/generate-inline",
        {"quantity": 1, "algorithmDetails": {"includeCheck": True}, "codeState": "Available"},
    )
    scan = made.json()["generatedScanCodes"][0]
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    wrong = alphabet[(alphabet.index(scan[-1]) + 1) % 32]

    _refusal(redeemer, {"scanCode": scan[:-1] + wrong}, 400, "INVALID_SCAN_CODE")
    assert redeemer.post({"scanCode": scan}).status == 200


def test_a_body_that_fails_validation_names_each_field_and_is_not_counted(redeemer):
    response = _refusal(
        redeemer,
        {"scanCode": 5, "codeType": "bad name!", "customRedemptionInfo": [], "extra": 1},
        400,
        "INVALID_PARAMETER_VALUE",
    )

    assert set(response.error["details"]["fields"]) == {
        "scanCode",
        "codeType",
        "customRedemptionInfo",
        "extra",
    }
    assert not RedeemFailure.objects.exists()


def test_server_redeem_needs_a_profile_id_of_1_to_128_characters(server_api):
    for profile_id in ["", "x" * 129, 42, None]:
        response = server_api.post(SERVER, {"profileId": profile_id, "scanCode": "ABCD-EFGH"})
        assert response.status == 400
        assert "profileId" in response.error["details"]["fields"]
    missing = server_api.post(SERVER, {"scanCode": "ABCD-EFGH"})
    assert missing.error["details"]["fields"] == {"profileId": "is required"}


def test_custom_redemption_info_over_16_kb_is_refused(redeemer):
    code = CodeFactory()
    response = _refusal(
        redeemer,
        {"scanCode": code.scan_code, "customRedemptionInfo": {"a": "x" * 17_000}},
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "customRedemptionInfo" in response.error["details"]["fields"]
    assert Code.objects.get(pk=code.pk).state == State.AVAILABLE


# --- fulfilment (a real webhook; no transaction may be open around the call) -------------------


@pytest.mark.django_db(transaction=True)
def test_an_async_webhook_that_accepts_leaves_the_code_in_progress_202(api, webhook):
    webhook.behaviour = lambda request: (200, {"success": True, "complete": False})
    code = CodeFactory(code_type=_fulfilled_type(webhook.url, fulfillment_async=True))

    response = api.as_(mint()).post(CLIENT, {"scanCode": code.scan_code})

    assert response.status == 202
    assert response.json()["codeState"] == "InProgress"
    assert response.json()["currentAttempt"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_says_no_is_redemption_failed(api, webhook):
    webhook.behaviour = lambda request: (200, {"success": False, "errorMsg": "out of stock"})
    code = CodeFactory(code_type=_fulfilled_type(webhook.url))

    response = api.as_(mint()).post(CLIENT, {"scanCode": code.scan_code})

    assert (response.status, response.code) == (409, "REDEMPTION_FAILED")
    assert Code.objects.get(pk=code.pk).state == State.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_cannot_be_reached_is_script_failure_502(api):
    from tests.webhook import closed_port_url

    code = CodeFactory(code_type=_fulfilled_type(closed_port_url()))

    response = api.as_(mint()).post(CLIENT, {"scanCode": code.scan_code})

    assert (response.status, response.code) == (502, "REDEMPTION_CODE_SCRIPT_FAILURE")


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_says_yes_redeems_200(api, webhook):
    code = CodeFactory(code_type=_fulfilled_type(webhook.url))

    response = api.as_(mint()).post(CLIENT, {"scanCode": code.scan_code})

    assert response.status == 200
    assert response.json()["codeState"] == "Redeemed"
    assert webhook.seen[0].json["profileId"] == "p-42"
