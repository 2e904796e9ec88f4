"""The webhook signing secret in the portal: shown once, then masked; reveals are audited."""

import pytest
from django.urls import reverse

from redemption import exceptions as exc
from redemption.models import AuditEvent, CodeType
from redemption.services import code_type_rotate_secret, code_type_secret_reveal
from tests.factories import CodeTypeFactory
from tests.fulfilment import SYSTEM, make_type

pytestmark = pytest.mark.django_db

FULFILMENT = {
    "fulfillment_url": "https://shop.example/hook",
    "fulfillment_max_retries": "0",
    "fulfillment_timeout_seconds": "30",
}


def _pages(ct: CodeType) -> list[str]:
    return [
        reverse("redemption:code_type_detail", args=[ct.name]),
        reverse("redemption:code_type_edit", args=[ct.name]),
    ]


def test_a_new_types_secret_is_shown_in_full_once_then_masked(client, ops_user):
    client.force_login(ops_user)

    created = client.post(
        reverse("redemption:code_type_create"),
        {"name": "summer", "use_type": "SINGLE", **FULFILMENT},
        follow=True,
    )

    ct = CodeType.objects.get(name="summer")
    assert ct.webhook_secret.encode() in created.content
    for url in _pages(ct):
        page = client.get(url).content
        assert ct.webhook_secret.encode() not in page
        assert ct.webhook_secret[:10].encode() in page


def test_a_first_webhook_url_on_an_existing_type_shows_its_new_secret_once(client, ops_user):
    client.force_login(ops_user)
    ct = CodeTypeFactory(name="plain")

    saved = client.post(
        reverse("redemption:code_type_edit", args=[ct.name]), FULFILMENT, follow=True
    )

    ct.refresh_from_db()
    assert ct.webhook_secret and ct.webhook_secret.encode() in saved.content
    assert ct.webhook_secret.encode() not in client.get(_pages(ct)[0]).content


def test_reveal_is_a_post_that_is_audited_and_shows_the_secret_once(client, ops_user):
    ct = make_type("https://shop.example/hook")
    client.force_login(ops_user)
    reveal = reverse("redemption:code_type_reveal_secret", args=[ct.name])

    assert client.get(reveal).status_code == 405
    shown = client.post(reveal, {"back": "detail"}, follow=True)

    assert shown.redirect_chain[-1][0] == _pages(ct)[0]
    assert ct.webhook_secret.encode() in shown.content
    assert ct.webhook_secret.encode() not in client.get(_pages(ct)[0]).content
    event = AuditEvent.objects.get(action="code_type.reveal_secret")
    assert (event.actor_label, event.code_type_name) == (ops_user.username, ct.name)
    assert ct.webhook_secret not in str(event.details)


@pytest.mark.parametrize("user", ["viewer_user", "support_user"])
def test_only_ops_may_reveal_or_see_the_secret(client, user, request):
    ct = make_type("https://shop.example/hook")
    client.force_login(request.getfixturevalue(user))

    refused = client.post(reverse("redemption:code_type_reveal_secret", args=[ct.name]))
    page = client.get(_pages(ct)[0]).content

    assert refused.status_code == 403
    assert ct.webhook_secret[:10].encode() not in page
    assert not AuditEvent.objects.filter(action="code_type.reveal_secret").exists()


def test_the_reveal_service_needs_ops_and_a_secret(viewer, ops):
    ct = make_type("https://shop.example/hook")
    plain = CodeTypeFactory(name="plain")

    assert code_type_secret_reveal(actor=ops, name=ct.name) == ct.webhook_secret
    with pytest.raises(exc.PermissionDeniedError):
        code_type_secret_reveal(actor=viewer, name=ct.name)
    with pytest.raises(exc.InvalidParameterError):
        code_type_secret_reveal(actor=ops, name=plain.name)


def test_rotation_keeps_the_old_secret_for_the_grace_period_and_audits_it(settings):
    settings.WEBHOOK_SECRET_GRACE_HOURS = 24
    ct = make_type("https://shop.example/hook")
    old = ct.webhook_secret

    rotated = code_type_rotate_secret(actor=SYSTEM, name=ct.name)

    assert rotated.previous_webhook_secret == old != rotated.webhook_secret
    window = rotated.previous_secret_valid_until - rotated.updated_at
    assert window.total_seconds() == 24 * 3600
    event = AuditEvent.objects.get(action="code_type.rotate_secret")
    assert event.details["previousSecretValidUntil"].startswith(
        rotated.previous_secret_valid_until.date().isoformat()
    )
    assert old not in str(event.details) and rotated.webhook_secret not in str(event.details)
