"""A code type edit is audited with the old and new value of every setting it changed."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from redemption.models import AuditEvent
from redemption.services import code_type_create, code_type_update, keys
from tests.fulfilment import SYSTEM

pytestmark = pytest.mark.django_db

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def _last_update() -> dict:
    return AuditEvent.objects.filter(action="code_type.update").latest("id").details


def test_every_changed_setting_is_recorded_with_its_old_and_new_value():
    ct = code_type_create(
        actor=SYSTEM,
        name="promo",
        use_type="MULTI",
        scan_code="FREESTUFF",
        description="old text",
        max_redemptions=10,
        custom_code_info={"coins": 1},
        fulfillment={
            "url": "https://a.example/hook",
            "async": False,
            "maxRetries": 0,
            "timeoutSeconds": 30,
        },
    )
    secret = ct.webhook_secret

    code_type_update(
        actor=SYSTEM,
        name="promo",
        description="new text",
        valid_start=START,
        valid_end=END,
        max_redemptions=20,
        custom_code_info={"coins": 2},
        is_disabled=True,
        fulfillment={
            "url": "https://b.example/hook",
            "async": True,
            "maxRetries": 3,
            "timeoutSeconds": 60,
        },
    )

    changes = _last_update()["changes"]
    assert changes == {
        "description": {"old": "old text", "new": "new text"},
        "valid_start": {"old": None, "new": START.isoformat()},
        "valid_end": {"old": None, "new": END.isoformat()},
        "max_redemptions": {"old": 10, "new": 20},
        "custom_code_info": {"old": {"coins": 1}, "new": {"coins": 2}},
        "is_disabled": {"old": False, "new": True},
        "fulfillment_url": {"old": "https://a.example/hook", "new": "https://b.example/hook"},
        "fulfillment_async": {"old": False, "new": True},
        "fulfillment_max_retries": {"old": 0, "new": 3},
        "fulfillment_timeout_seconds": {"old": 30, "new": 60},
    }
    assert secret not in str(AuditEvent.objects.values_list("details", flat=True))


def test_settings_given_but_unchanged_are_named_without_values():
    code_type_create(actor=SYSTEM, name="quiet", description="same")

    code_type_update(actor=SYSTEM, name="quiet", description="same", is_disabled=True)

    details = _last_update()
    assert details["fields"] == ["description", "is_disabled"]
    assert details["changes"] == {"is_disabled": {"old": False, "new": True}}


def test_a_first_webhook_notes_that_a_secret_was_made_without_showing_it():
    code_type_create(actor=SYSTEM, name="hooked")

    ct = code_type_update(
        actor=SYSTEM,
        name="hooked",
        fulfillment={
            "url": "https://a.example/hook",
            "async": False,
            "maxRetries": 0,
            "timeoutSeconds": 30,
        },
    )

    details = _last_update()
    assert details["webhookSecretCreated"] is True
    assert ct.webhook_secret not in str(details)


def test_an_edit_in_the_portal_is_audited_with_old_and_new_values(client, ops_user):
    code_type_create(actor=SYSTEM, name="portal-edit", description="before")
    client.force_login(ops_user)

    client.post(
        reverse("redemption:code_type_edit", args=["portal-edit"]),
        {
            "description": "after",
            "valid_end": "2027-01-01T00:00",
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
        },
    )

    changes = _last_update()["changes"]
    assert changes["description"] == {"old": "before", "new": "after"}
    assert changes["valid_end"] == {"old": None, "new": END.isoformat()}
    assert "fulfillment_url" not in changes


def test_an_api_patch_is_audited_with_old_and_new_values(client):
    _, secret = keys.server_key_create(actor=SYSTEM, name="backend")
    code_type_create(actor=SYSTEM, name="api-edit", description="x")

    response = client.patch(
        "/api/v1/server/code-types/api-edit",
        data={"isDisabled": True, "validEnd": "2027-01-01T00:00:00Z"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )

    assert response.status_code == 200
    event = AuditEvent.objects.filter(action="code_type.update").latest("id")
    assert event.actor_kind == "server_key"
    assert event.details["changes"] == {
        "is_disabled": {"old": False, "new": True},
        "valid_end": {"old": None, "new": END.isoformat()},
    }
