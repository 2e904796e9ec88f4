"""Global Monitoring's "Get test code" for a shared type: its scan code, and whether a redeem
would pass the type's gates now (the same decision redeem itself makes)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.services import redeem
from redemption.transitions import redeem_refusal
from tests.factories import SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

URL = "redemption:test_code"


def _ask(client, user, ct, state):
    client.force_login(user)
    response = client.get(
        reverse(URL), {"test-code_type": ct.name, "test-state": state}, follow=True
    )
    return response, [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize("state", ["Inactive", "Available", "Redeemed", "Invalidated"])
def test_a_shared_type_answers_its_scan_code_whatever_state_is_chosen(client, support_user, state):
    ct = SharedCodeTypeFactory(name="freestuff", scan_code="FREE-STUFF")
    response, said = _ask(client, support_user, ct, state)
    assert response.redirect_chain[-1][0] == reverse(
        "redemption:code_type_detail", args=["freestuff"]
    )
    assert len(said) == 1
    assert "FREE-STUFF" in said[0]
    assert said[0].endswith("It is redeemable now.")


def _gated(name: str) -> dict:
    now = timezone.now()
    return {
        "disabled": {"is_disabled": True},
        "not yet": {"valid_start": now + timedelta(days=1)},
        "expired": {"valid_start": now - timedelta(days=2), "valid_end": now - timedelta(days=1)},
        "cap": {"max_redemptions": 2, "redemption_count": 2},
    }[name]


@pytest.mark.parametrize(
    ("gate", "error"),
    [
        ("disabled", exc.CodeTypeDisabledError),
        ("not yet", exc.NotYetValidError),
        ("expired", exc.ExpiredError),
        ("cap", exc.MaxRedemptionsReachedError),
    ],
)
def test_a_gated_shared_type_says_why_it_is_not_redeemable_and_redeem_agrees(
    client, support_user, gate, error
):
    ct = SharedCodeTypeFactory(scan_code="GATED-CODE", **_gated(gate))
    _, said = _ask(client, support_user, ct, "Available")
    assert "GATED-CODE" in said[0]
    assert f"It is not redeemable now: {error.default_message} ({error.code})" in said[0]
    # The page and the redeem service decide with the same function, so they cannot disagree.
    with pytest.raises(error):
        redeem(actor=Actor.system("t"), profile=Profile(id="p-1"), scan_code="GATED-CODE")


def test_the_cap_counts_only_when_asked_redeem_takes_its_slot_itself():
    ct = SharedCodeTypeFactory(max_redemptions=1, redemption_count=1)
    assert redeem_refusal(ct, now=timezone.now()) is None
    assert isinstance(
        redeem_refusal(ct, now=timezone.now(), count_cap=True), exc.MaxRedemptionsReachedError
    )


def test_viewers_get_no_test_code_of_a_shared_type_either(client, viewer_user):
    ct = SharedCodeTypeFactory()
    client.force_login(viewer_user)
    response = client.get(reverse(URL), {"test-code_type": ct.name, "test-state": "Available"})
    assert response.status_code == 403
