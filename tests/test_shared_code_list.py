"""A shared type's list of per-profile redemptions, filtered with django-filter (state, dates,
profile prefix) and paged by key like the personal code list."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from redemption.models import State
from tests.factories import SharedCodeTypeFactory, SharedRedemptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared():
    ct = SharedCodeTypeFactory(name="free")
    now = timezone.now()
    old = now - timedelta(days=10)
    SharedRedemptionFactory(code_type=ct, profile_id="ann-1", created_at=old, redeemed_at=old)
    SharedRedemptionFactory(code_type=ct, profile_id="ann-2")
    SharedRedemptionFactory(
        code_type=ct, profile_id="bob-1", state=State.FAILED, redeemed_at=None, current_attempt=1
    )
    SharedRedemptionFactory(profile_id="ann-3")  # another shared type
    return ct


def _rows(client, user, **params):
    client.force_login(user)
    response = client.get(reverse("redemption:code_type_detail", args=["free"]), params)
    assert response.status_code == 200
    return response, sorted(r.profile_id for r in response.context["keyset"].rows)


def test_the_list_filters_by_state_profile_prefix_and_dates(client, viewer_user, shared):
    day = timezone.now().date()
    assert _rows(client, viewer_user)[1] == ["ann-1", "ann-2", "bob-1"]
    assert _rows(client, viewer_user, state="Failed")[1] == ["bob-1"]
    assert _rows(client, viewer_user, profile="ann")[1] == ["ann-1", "ann-2"]
    assert _rows(client, viewer_user, profile="ann", redeemed_from=f"{day}")[1] == ["ann-2"]
    earlier = day - timedelta(days=5)
    assert _rows(client, viewer_user, created_to=f"{earlier}")[1] == ["ann-1"]
    assert _rows(client, viewer_user, profile="a_n")[1] == []  # a prefix, not a pattern


def test_the_filter_form_is_the_shared_one(client, viewer_user, shared):
    response, _ = _rows(client, viewer_user)
    form = response.context["filter"].form
    assert list(form.fields) == [
        "state",
        "profile",
        "created_from",
        "created_to",
        "redeemed_from",
        "redeemed_to",
    ]
    assert [c for c, _ in form.fields["state"].choices] == ["", "InProgress", "Redeemed", "Failed"]
    body = response.content.decode()
    assert 'aria-label="Filter redemptions"' in body
    assert 'name="profile"' in body


@pytest.mark.parametrize(
    "params",
    [{"state": "Available"}, {"created_from": "not-a-day"}, {"profile": "x" * 500}],
)
def test_bad_filter_input_is_said_on_the_form_and_lists_nothing(
    client, viewer_user, shared, params
):
    response, rows = _rows(client, viewer_user, **params)
    assert rows == []
    assert response.context["filter"].form.errors
    assert b"field-error" in response.content


def test_pages_by_key_keep_the_filter(client, viewer_user, shared, monkeypatch):
    monkeypatch.setattr("redemption.views.design.PER_PAGE", 1)
    first, one = _rows(client, viewer_user, profile="ann")
    after = first.context["keyset"].after
    assert len(one) == 1 and after is not None
    second, other = _rows(client, viewer_user, profile="ann", after=after)
    # Pages follow the ids, which need not follow creation within one millisecond.
    assert sorted(one + other) == ["ann-1", "ann-2"]
    assert second.context["keyset"].after is None
