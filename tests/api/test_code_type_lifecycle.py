"""Code types at scale over the server API: list filters, archive/unarchive, delete; disabled
and archived types refuse new codes and activation, but invalidation goes on; activate with
`{}` replaces the custom info (#16 items 4, 5, 6)."""

import pytest

from redemption.models import AuditEvent, Code, CodeType, State
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

TYPES = "/api/v1/server/code-types"
CODES = "/api/v1/server/codes"


@pytest.fixture
def redeem_api(server_api):
    """Redeem through POST /server/redeem on behalf of one profile."""

    def redeem(body: dict, profile_id: str = "p-1"):
        return server_api.post("/api/v1/server/redeem", {"profileId": profile_id, **body})

    return redeem


def _is(response, status, code):
    assert (response.status, response.code) == (status, code), response.json()


def _names(server_api, query: str = "") -> list[str]:
    response = server_api.get(f"{TYPES}?{query}")
    assert response.status == 200, response.json()
    return [t["codeType"] for t in response.json()["codeTypes"]]


# --- list filters ---------------------------------------------------------------------------


def test_list_filters_by_webhook_and_hides_archived_types_unless_asked(server_api):
    CodeTypeFactory(name="hooked", fulfillment_url="https://shop.example/hook")
    CodeTypeFactory(name="plain")
    CodeTypeFactory(name="old", archived_at="2026-01-01T00:00:00Z")

    assert _names(server_api) == ["hooked", "plain"]
    assert _names(server_api, "hasWebhook=true") == ["hooked"]
    assert _names(server_api, "hasWebhook=false") == ["plain"]
    assert _names(server_api, "archived=true") == ["old"]
    assert _names(server_api, "archived=false&hasWebhook=false") == ["plain"]
    archived = server_api.get(f"{TYPES}?archived=true").json()["codeTypes"][0]
    assert archived["archivedAt"] == "2026-01-01T00:00:00.000Z"
    assert server_api.get(f"{TYPES}/plain").json()["archivedAt"] is None
    bad = server_api.get(f"{TYPES}?hasWebhook=maybe")
    _is(bad, 400, "INVALID_PARAMETER_VALUE")
    assert bad.error["details"]["fields"] == {"hasWebhook": "must be true or false"}


def test_list_pages_through_filtered_types_with_the_cursor(server_api):
    for i in range(5):
        CodeTypeFactory(name=f"camp-{i}", description="Spring sale" if i % 2 else "")
    CodeTypeFactory(name="camp-x", description="Spring sale", archived_at="2026-01-01T00:00Z")

    first = server_api.get(f"{TYPES}?search=spring&limit=1").json()
    second = server_api.get(f"{TYPES}?search=spring&limit=1&cursor={first['nextCursor']}").json()

    assert [t["codeType"] for t in first["codeTypes"]] == ["camp-1"]
    assert [t["codeType"] for t in second["codeTypes"]] == ["camp-3"]
    assert second["nextCursor"] is None


# --- archive, unarchive -----------------------------------------------------------------------


def test_archive_makes_a_type_unredeemable_and_unarchive_brings_it_back(server_api, redeem_api):
    code = CodeFactory(code_type=CodeTypeFactory(name="gone"), state=State.AVAILABLE)
    hidden = CodeFactory(code_type=CodeTypeFactory(), state=State.INACTIVE)

    archived = server_api.post(f"{TYPES}/gone/archive")
    again = server_api.post(f"{TYPES}/gone/archive")

    assert archived.status == 200 and archived.json()["archivedAt"] is not None
    assert again.json()["archivedAt"] == archived.json()["archivedAt"]
    assert AuditEvent.objects.filter(action="code_type.archive").count() == 1
    assert "gone" not in _names(server_api)
    refused = redeem_api({"scanCode": code.scan_code})
    _is(refused, 409, "REDEMPTION_CODE_TYPE_DISABLED")
    assert refused.error["details"]["archived"] is True
    # The codes are kept; a leaked one can still be stopped.
    invalidated = server_api.post(
        f"{CODES}/{code.scan_code}/invalidate", {"codeType": "gone", "invalidationReason": "x"}
    )
    assert invalidated.json()["codeState"] == "Invalidated"
    assert CodeType.objects.get(pk=hidden.code_type_id).archived_at is None
    back = server_api.post(f"{TYPES}/gone/unarchive")
    assert back.status == 200 and back.json()["archivedAt"] is None
    assert AuditEvent.objects.filter(action="code_type.unarchive").count() == 1
    fresh = CodeFactory(code_type=code.code_type, state=State.AVAILABLE)
    assert redeem_api({"scanCode": fresh.scan_code}).status == 200


def test_archive_of_a_type_that_does_not_exist_is_404(server_api):
    _is(server_api.post(f"{TYPES}/nope/archive"), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")
    _is(server_api.post(f"{TYPES}/nope/unarchive"), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")


# --- delete -----------------------------------------------------------------------------------


def test_delete_an_empty_type_and_refuse_one_with_codes(server_api):
    CodeTypeFactory(name="empty")
    full = CodeFactory(code_type=CodeTypeFactory(name="full"))

    deleted = server_api.delete(f"{TYPES}/empty")
    refused = server_api.delete(f"{TYPES}/full")

    assert (deleted.status, deleted.json()) == (200, {"codeType": "empty", "deleted": True})
    _is(refused, 409, "REDEMPTION_CODE_TYPE_NOT_EMPTY")
    assert refused.error["reasonCode"] == 40805
    assert not CodeType.objects.filter(name="empty").exists()
    assert Code.objects.filter(pk=full.pk).exists()
    _is(server_api.delete(f"{TYPES}/empty"), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")
    event = AuditEvent.objects.get(action="code_type.delete")
    assert event.code_type_name == "empty"


def test_deleting_an_unredeemed_shared_type_frees_its_scan_code(server_api):
    SharedCodeTypeFactory(name="promo", scan_code="FREEGIFT")

    assert server_api.delete(f"{TYPES}/promo").status == 200

    again = server_api.post(
        TYPES, {"codeType": "promo2", "codeUseType": "MULTI", "scanCode": "FREEGIFT"}
    )
    assert again.status == 201, again.json()


def test_a_shared_type_someone_redeemed_is_not_deleted(server_api, redeem_api):
    SharedCodeTypeFactory(name="promo", scan_code="FREEGIFT")
    assert redeem_api({"scanCode": "FREEGIFT"}).status == 200

    _is(server_api.delete(f"{TYPES}/promo"), 409, "REDEMPTION_CODE_TYPE_NOT_EMPTY")
    assert CodeType.objects.filter(name="promo").exists()


# --- disabled types (item 5) ------------------------------------------------------------------


def test_a_disabled_type_refuses_new_codes_and_activation_but_not_invalidation(server_api):
    ct = CodeTypeFactory(name="off", is_disabled=True)
    inactive = CodeFactory(code_type=ct, state=State.INACTIVE)
    other = CodeFactory(code_type=ct, state=State.INACTIVE)

    added = server_api.post(CODES, {"scanCode": "NEW-0001", "codeType": "off"})
    activated = server_api.post(f"{CODES}/{inactive.scan_code}/activate", {"codeType": "off"})
    invalidated = server_api.post(f"{CODES}/{other.scan_code}/invalidate", {"codeType": "off"})

    _is(added, 409, "REDEMPTION_CODE_TYPE_DISABLED")
    _is(activated, 409, "REDEMPTION_CODE_TYPE_DISABLED")
    assert added.error["reasonCode"] == activated.error["reasonCode"] == 40753
    assert not Code.objects.filter(canonical="NEW0001").exists()
    inactive.refresh_from_db()
    assert inactive.state == State.INACTIVE
    assert invalidated.json()["codeState"] == "Invalidated"


# --- activate with custom info (item 6) -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"customCodeInfo": {}}, {}),
        ({"customCodeInfo": {"sku": "B"}}, {"sku": "B"}),
        ({"customCodeInfo": None}, {"sku": "A"}),
        ({}, {"sku": "A"}),
    ],
)
def test_activate_replaces_custom_info_when_given_even_empty(server_api, body, expected):
    code = CodeFactory(state=State.INACTIVE, custom_code_info={"sku": "A"})

    response = server_api.post(
        f"{CODES}/{code.scan_code}/activate", {"codeType": code.code_type.name, **body}
    )

    assert response.status == 200, response.json()
    assert response.json()["customCodeInfo"] == expected
    code.refresh_from_db()
    assert code.custom_code_info == expected
    event = AuditEvent.objects.get(action="code.activate")
    replaced = body.get("customCodeInfo") is not None
    assert event.details.get("customCodeInfoReplaced", False) is replaced
