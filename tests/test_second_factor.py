"""Two-factor sign-in (django-otp TOTP + recovery codes), the roles that must use it, and idle
session expiry."""

import base64
import io
import re
import time
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from redemption.actors import Actor
from redemption.models import AuditEvent, SignInCounter
from redemption.services import staff

pytestmark = pytest.mark.django_db

LOGIN, CODE, TWO_FACTOR = "/accounts/login/", "/accounts/login/code/", "/accounts/two-factor/"
RIGHT = "pw-olive-ops-123!"


def code_for(key_hex: str, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for this secret (a later step: not yet used)."""
    totp = TOTP(bytes.fromhex(key_hex), digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def enrol(client: Client) -> tuple[str, list[str]]:
    """Turn on the signed-in user's second factor through the page; (secret hex, recovery)."""
    page = client.get(TWO_FACTOR).content.decode()
    secret = re.search(r'data-testid="second-factor-secret">([A-Z2-7 ]+)<', page).group(1)
    key_hex = base64.b32decode(secret.replace(" ", "")).hex()
    done = client.post(TWO_FACTOR, {"action": "enrol", "code": code_for(key_hex)})
    recovery = re.findall(r"<li>([a-z2-7]{8})</li>", done.content.decode())
    return key_hex, recovery


@pytest.fixture
def enrolled(ops_user):
    client = Client()
    client.force_login(ops_user)
    key_hex, recovery = enrol(client)
    return key_hex, recovery


def test_enrolment_shows_a_server_made_qr_code_and_the_secret(client, ops_user):
    client.force_login(ops_user)

    page = client.get(TWO_FACTOR).content.decode()

    image = re.search(r'<img class="qr" src="data:image/svg\+xml;charset=utf-8,([^"]+)"', page)
    assert image and "<svg" in unquote(image.group(1).replace("&#x27;", "'"))
    assert "otpauth" not in page  # the secret's URL is in the picture only
    assert re.search(r'data-testid="second-factor-secret">[A-Z2-7]{4}( [A-Z2-7]{4})+<', page)
    assert not TOTPDevice.objects.exists()


def test_one_right_code_turns_it_on_and_shows_ten_recovery_codes_once(client, ops_user):
    client.force_login(ops_user)

    key_hex, recovery = enrol(client)

    assert len(recovery) == 10 and len(set(recovery)) == 10
    device = TOTPDevice.objects.get(user=ops_user)
    assert device.confirmed and device.key == key_hex
    assert StaticToken.objects.filter(device__user=ops_user).count() == 10
    later = client.get(TWO_FACTOR).content.decode()
    assert "10 recovery codes left" in later
    assert not any(code in later for code in recovery)
    assert AuditEvent.objects.get(action="staff_user.second_factor_on").actor_label == "olive-ops"


def test_a_wrong_code_does_not_turn_it_on(client, ops_user):
    client.force_login(ops_user)
    client.get(TWO_FACTOR)

    refused = client.post(TWO_FACTOR, {"action": "enrol", "code": "000000"})

    assert b"That code does not match" in refused.content
    assert not TOTPDevice.objects.exists()


def test_an_enrolled_account_needs_a_code_after_its_password(enrolled, ops_user):
    key_hex, _ = enrolled
    client = Client()

    password = client.post(LOGIN, {"username": ops_user.username, "password": RIGHT})
    wrong = client.post(CODE, {"code": "123456"})
    assert not wrong.wsgi_request.user.is_authenticated
    right = client.post(CODE, {"code": code_for(key_hex, steps_ahead=1)})

    assert password.status_code == 302 and password["Location"] == CODE
    assert not password.wsgi_request.user.is_authenticated
    assert b"That code is not valid" in wrong.content
    assert right.status_code == 302 and right["Location"] == reverse("redemption:dashboard")
    assert client.get("/").status_code == 200
    # The wrong code counted as a failed sign-in; the completed sign-in cleared the account.
    assert SignInCounter.objects.get(key="ip:127.0.0.1").failures == 1
    assert SignInCounter.objects.get(key="account:olive-ops").failures == 0


def test_the_code_step_goes_nowhere_without_a_right_password(enrolled, ops_user):
    key_hex, _ = enrolled
    client = Client()
    client.post(LOGIN, {"username": ops_user.username, "password": "wrong"})

    response = client.post(CODE, {"code": code_for(key_hex, steps_ahead=1)})

    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not client.get("/").wsgi_request.user.is_authenticated


def test_a_recovery_code_signs_in_once(enrolled, ops_user):
    _, recovery = enrolled

    def sign_in(code: str) -> int:
        client = Client()
        client.post(LOGIN, {"username": ops_user.username, "password": RIGHT})
        return client.post(CODE, {"code": code.upper()}).status_code

    assert sign_in(recovery[0]) == 302
    assert sign_in(recovery[0]) == 200  # used up: refused
    event = AuditEvent.objects.get(action="staff_user.recovery_code_used")
    assert event.details["recoveryCodesLeft"] == 9


def test_wrong_codes_count_toward_the_accounts_limit(enrolled, ops_user, settings):
    key_hex, _ = enrolled
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    client.post(LOGIN, {"username": ops_user.username, "password": RIGHT})
    client.post(CODE, {"code": "111111"})
    client.post(CODE, {"code": "222222"})
    # A right password in between gives no fresh tries for codes.
    Client().post(LOGIN, {"username": ops_user.username, "password": RIGHT})
    client.post(CODE, {"code": "333333"})

    paused = client.post(CODE, {"code": code_for(key_hex, steps_ahead=1)})

    assert paused.status_code == 429
    assert b"Sign-in is paused" in paused.content
    assert not client.get("/").wsgi_request.user.is_authenticated


def test_renewing_recovery_codes_needs_a_code_and_retires_the_old_ones(enrolled, ops_user):
    key_hex, old = enrolled
    client = Client()
    client.force_login(ops_user)

    refused = client.post(TWO_FACTOR, {"action": "renew", "code": "000000"})
    renewed = client.post(TWO_FACTOR, {"action": "renew", "code": code_for(key_hex, steps_ahead=1)})

    assert b"does not match" in refused.content
    new = re.findall(r"<li>([a-z2-7]{8})</li>", renewed.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(new)


def test_turning_it_off_needs_a_code(enrolled, ops_user):
    key_hex, _ = enrolled
    client = Client()
    client.force_login(ops_user)

    client.post(TWO_FACTOR, {"action": "off", "code": code_for(key_hex, steps_ahead=1)})

    assert not TOTPDevice.objects.exists()
    assert AuditEvent.objects.filter(action="staff_user.second_factor_off").count() == 1


def test_a_superuser_resets_someones_second_factor(enrolled, ops_user, admin_user):
    client = Client()
    client.force_login(admin_user)

    client.post(reverse("redemption:staff_user_second_factor_reset", args=[ops_user.pk]))

    assert not TOTPDevice.objects.filter(user=ops_user).exists()
    assert not StaticToken.objects.exists()
    event = AuditEvent.objects.get(action="staff_user.second_factor_reset")
    assert (event.actor_label, event.details["username"]) == ("ada-admin", "olive-ops")
    signed_in = Client().post(LOGIN, {"username": ops_user.username, "password": RIGHT})
    assert signed_in["Location"] == reverse("redemption:dashboard")


# --- roles that must use a second factor --------------------------------------------------------


def test_a_required_role_can_reach_only_enrolment_and_sign_out(client, ops_user, settings):
    settings.STAFF_2FA_REQUIRED_ROLES = frozenset({"Ops"})
    signed_in = client.post(LOGIN, {"username": ops_user.username, "password": RIGHT})

    held = [client.get(url) for url in ("/", "/design/redemption-codes/", "/audit/")]
    page = client.get(TWO_FACTOR)

    assert signed_in.status_code == 302
    assert {(r.status_code, r["Location"]) for r in held} == {(302, TWO_FACTOR)}
    assert b"Your role requires two-factor sign-in" in page.content
    enrol(client)
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302


def test_a_required_role_with_an_older_session_signs_in_again(enrolled, ops_user, settings):
    client = Client()
    client.force_login(ops_user)  # a session without the second factor
    settings.STAFF_2FA_REQUIRED_ROLES = frozenset({"Ops"})

    response = client.get("/")

    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not client.get(LOGIN).wsgi_request.user.is_authenticated


def test_other_roles_are_not_held(client, viewer_user, settings):
    settings.STAFF_2FA_REQUIRED_ROLES = frozenset({"Ops", "admin"})
    client.post(LOGIN, {"username": viewer_user.username, "password": "pw-vera-viewer-123!"})

    assert client.get("/").status_code == 200


def test_a_required_role_cannot_turn_its_second_factor_off(enrolled, ops_user, settings):
    key_hex, _ = enrolled
    settings.STAFF_2FA_REQUIRED_ROLES = frozenset({"Ops"})
    client = Client()
    client.post(LOGIN, {"username": ops_user.username, "password": RIGHT})
    client.post(CODE, {"code": code_for(key_hex, steps_ahead=1)})

    refused = client.post(TWO_FACTOR, {"action": "off", "code": code_for(key_hex, steps_ahead=1)})

    assert b"Your role requires two-factor sign-in" in refused.content
    assert TOTPDevice.objects.filter(user=ops_user).exists()


# --- idle sessions ------------------------------------------------------------------------------


def test_a_session_ends_after_the_idle_time_and_each_visit_renews_it(client, ops_user, settings):
    assert settings.SESSION_COOKIE_AGE == settings.STAFF_SESSION_IDLE_MINUTES * 60 == 3600
    client.post(LOGIN, {"username": ops_user.username, "password": RIGHT})
    session = Session.objects.get()
    first_expiry = session.expire_date
    assert timedelta(minutes=59) < first_expiry - timezone.now() <= timedelta(minutes=60)

    # A visit more than a minute after the last renewal pushes the expiry forward...
    store = client.session
    store["renewed_at"] -= 120
    store.save()
    Session.objects.update(expire_date=first_expiry - timedelta(minutes=2))
    assert client.get("/").status_code == 200
    assert Session.objects.get().expire_date > first_expiry - timedelta(minutes=1)

    # ...and a session left idle past its expiry is over.
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_demo_logins_sign_in_with_the_printed_password_alone(settings):
    for role in ("Viewer", "Support", "Ops"):  # a transactional test's flush may have gone first
        Group.objects.get_or_create(name=role)
    call_command("load_demo_data", stdout=io.StringIO())
    ops = User.objects.get(username="ops")
    staff.second_factor_enrol(actor=Actor.staff(ops), key_hex="ab" * 20, code=code_for("ab" * 20))
    settings.AXES_FAILURE_LIMIT = 1
    Client().post(LOGIN, {"username": "ops", "password": "wrong"})
    out = io.StringIO()

    call_command("load_demo_data", stdout=out)

    password = re.search(r"ops\s+/ (\S+)", out.getvalue()).group(1)
    response = Client().post(LOGIN, {"username": "ops", "password": password})
    assert response["Location"] == reverse("redemption:dashboard")
    assert not TOTPDevice.objects.exists()


@pytest.mark.parametrize("user_fixture", ["viewer_user", "support_user", "ops_user", "admin_user"])
def test_every_role_may_turn_on_two_factor_sign_in(client, request, user_fixture):
    client.force_login(request.getfixturevalue(user_fixture))

    key_hex, recovery = enrol(client)

    assert len(recovery) == 10
    assert TOTPDevice.objects.filter(key=key_hex, confirmed=True).count() == 1


def test_the_pages_need_a_signed_in_user(client):
    assert client.get(TWO_FACTOR)["Location"].startswith(LOGIN)
    assert client.get(CODE)["Location"] == LOGIN
