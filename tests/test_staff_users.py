"""Staff users managed by superusers in the portal (issue #16 item 1): list, create with a role
and a one-time set-password link, change role, deactivate, reset password; guards; audit."""

import re
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from redemption import exceptions as exc
from redemption import permissions
from redemption.actors import Actor
from redemption.models import AuditEvent
from redemption.services import staff

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
STAFF = "/staff/"


def _link(response) -> str:
    match = re.search(
        r'data-testid="set-password-link">https?://[^/]+([^<]+)<', response.content.decode()
    )
    assert match, "no set-password link on the page"
    return match.group(1)


def _set_password(link: str, password: str) -> Client:
    client = Client()
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})
    return client


def _actions(user_id: int) -> list[str]:
    return [
        reverse(f"redemption:{name}", args=[user_id])
        for name in (
            "staff_user_detail",
            "staff_user_role",
            "staff_user_active",
            "staff_user_unlock",
            "staff_user_second_factor_reset",
            "staff_user_password_reset",
        )
    ]


@pytest.mark.parametrize("user_fixture", ["viewer_user", "support_user", "ops_user"])
def test_every_staff_page_is_403_below_superuser(client, request, user_fixture, admin_user):
    client.force_login(request.getfixturevalue(user_fixture))

    answers = [client.get(STAFF).status_code, client.post(STAFF, {"username": "x"}).status_code]
    answers += [
        client.post(url, {"role": "admin", "active": "no"}).status_code
        for url in _actions(admin_user.pk)
    ]

    assert set(answers) == {403}
    assert b"Staff users" not in client.get("/").content
    assert not AuditEvent.objects.filter(action__startswith="staff_user.").exists()


def test_the_list_shows_role_activity_last_sign_in_lock_and_second_factor(
    client, admin_user, ops_user, viewer_user
):
    client.force_login(admin_user)
    Client().post(LOGIN, {"username": viewer_user.username, "password": "pw-vera-viewer-123!"})

    page = client.get(STAFF)

    rows = {r.record.username: r.record for r in page.context["table"].rows}
    assert set(rows) == {"ada-admin", "olive-ops", "vera-viewer"}
    assert (rows["olive-ops"].role, rows["ada-admin"].role) == ("Ops", "admin")
    assert rows["vera-viewer"].last_login is not None and rows["olive-ops"].last_login is None
    assert not rows["olive-ops"].locked and not rows["olive-ops"].second_factor
    assert b'href="/staff/"' in client.get("/").content  # in the navigation


def test_a_superuser_creates_a_user_who_sets_a_password_with_a_one_time_link(client, admin_user):
    client.force_login(admin_user)

    created = client.post(STAFF, {"username": "newbie", "role": "Support"})
    link = _link(created)
    user = User.objects.get(username="newbie")

    assert permissions.role_name(user) == "Support"
    assert not user.has_usable_password()
    assert link not in client.get(STAFF).content.decode()  # shown once
    _set_password(link, "a-fine-long-password-42")
    ok = Client().post(LOGIN, {"username": "newbie", "password": "a-fine-long-password-42"})
    assert ok.status_code == 302
    reused = Client().get(link, follow=True)
    assert b"This link no longer works" in reused.content
    event = AuditEvent.objects.get(action="staff_user.create")
    assert event.details == {"username": "newbie", "role": "Support"}


def test_a_taken_user_name_is_refused_whatever_its_case(client, admin_user, ops_user):
    client.force_login(admin_user)

    response = client.post(STAFF, {"username": "OLIVE-OPS", "role": "Viewer"})

    assert "is taken" in response.context["form"].errors["username"][0]
    assert User.objects.count() == 2


def test_a_superuser_changes_a_role_and_it_is_audited(client, admin_user, ops_user):
    client.force_login(admin_user)

    client.post(reverse("redemption:staff_user_role", args=[ops_user.pk]), {"role": "Viewer"})

    assert permissions.role_name(User.objects.get(pk=ops_user.pk)) == "Viewer"
    event = AuditEvent.objects.get(action="staff_user.role")
    assert event.details["role"] == {"old": "Ops", "new": "Viewer"}


def test_deactivating_ends_sign_in_and_reactivating_restores_it(client, admin_user, ops_user):
    client.force_login(admin_user)
    url = reverse("redemption:staff_user_active", args=[ops_user.pk])
    session = Client()
    session.force_login(ops_user)

    client.post(url, {"active": "no"})
    refused = Client().post(LOGIN, {"username": "olive-ops", "password": "pw-olive-ops-123!"})
    kicked_out = session.get("/")
    client.post(url, {"active": "yes"})
    again = Client().post(LOGIN, {"username": "olive-ops", "password": "pw-olive-ops-123!"})

    assert refused.status_code == 200 and kicked_out.status_code == 302
    assert again.status_code == 302
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["staff_user.deactivate", "staff_user.activate"]


def test_a_password_reset_stops_the_old_password_and_gives_a_link(client, admin_user, ops_user):
    client.force_login(admin_user)

    reset = client.post(reverse("redemption:staff_user_password_reset", args=[ops_user.pk]))

    old = Client().post(LOGIN, {"username": "olive-ops", "password": "pw-olive-ops-123!"})
    assert old.status_code == 200
    _set_password(_link(reset), "another-fine-password-7")
    new = Client().post(LOGIN, {"username": "olive-ops", "password": "another-fine-password-7"})
    assert new.status_code == 302
    assert AuditEvent.objects.filter(action="staff_user.password_reset").count() == 1


def test_nobody_removes_their_own_superuser_flag(client, admin_user):
    client.force_login(admin_user)
    before = AuditEvent.objects.count()

    demoted = client.post(
        reverse("redemption:staff_user_role", args=[admin_user.pk]), {"role": "Ops"}, follow=True
    )
    deactivated = client.post(
        reverse("redemption:staff_user_active", args=[admin_user.pk]), {"active": "no"}, follow=True
    )

    admin_user.refresh_from_db()
    assert admin_user.is_superuser and admin_user.is_active
    messages = [str(m) for r in (demoted, deactivated) for m in r.context["messages"]]
    assert any("You cannot take the superuser role from yourself" in m for m in messages)
    assert any("You cannot deactivate yourself" in m for m in messages)
    assert AuditEvent.objects.count() == before


def test_the_last_active_superuser_stays(admin_user):
    system = Actor.system("test")

    with pytest.raises(exc.InvalidParameterError, match="last active superuser"):
        staff.staff_user_role_set(actor=system, user_id=admin_user.pk, role="Ops")
    with pytest.raises(exc.InvalidParameterError, match="last active superuser"):
        staff.staff_user_active_set(actor=system, user_id=admin_user.pk, active=False)

    admin_user.refresh_from_db()
    assert admin_user.is_superuser and admin_user.is_active


@pytest.mark.django_db(transaction=True)
def test_two_superusers_demoting_each_other_at_once_leave_one(admin_user):
    other = User.objects.create_superuser("bea-admin", password="pw-bea-admin-123!")
    start, outcomes = threading.Barrier(2), []

    def demote(actor_user, target) -> None:
        start.wait()
        try:
            staff.staff_user_role_set(
                actor=Actor.staff(actor_user), user_id=target.pk, role="Viewer"
            )
            outcomes.append("demoted")
        except exc.InvalidParameterError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(admin_user, other)),
        threading.Thread(target=demote, args=(other, admin_user)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["demoted", "refused"]
    assert User.objects.filter(is_superuser=True, is_active=True).count() == 1
