"""Staff sign-in limits: per account across addresses, per address across accounts, counted
atomically (django-axes with redemption.sign_in_limits' handler), a cool-off, and unlocking."""

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from redemption import sign_in_limits
from redemption.models import AuditEvent, SignInCounter
from redemption.services import housekeeping

URL = "/accounts/login/"
RIGHT = "pw-olive-ops-123!"


def post(client, username: str, password: str = "nope", ip: str = "198.51.100.1"):  # noqa: S107
    return client.post(URL, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.fixture
def limits(settings):
    """Small limits, each test raising the one it does not look at out of the way."""
    settings.AXES_FAILURE_LIMIT = 3
    settings.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


@pytest.mark.django_db
def test_an_account_is_locked_across_addresses(client, ops_user, limits):
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 100

    wrong = [post(client, ops_user.username, ip=f"198.51.100.{n}").status_code for n in (1, 2, 3)]
    refused = post(client, ops_user.username, RIGHT, ip="203.0.113.9")

    assert wrong == [200, 200, 200]
    assert refused.status_code == 429
    assert b"Sign-in is paused after too many failed attempts" in refused.content
    assert 0 < int(refused["Retry-After"]) <= 15 * 60
    assert not refused.wsgi_request.user.is_authenticated
    # Another account from the same addresses is not affected.
    assert post(client, "someone-else", ip="198.51.100.1").status_code == 200


@pytest.mark.django_db
def test_an_address_is_locked_across_accounts(client, ops_user, limits):
    limits.AXES_FAILURE_LIMIT = 100

    wrong = [post(client, name, ip="198.51.100.7").status_code for name in ("a", "b", "c")]
    refused = post(client, ops_user.username, RIGHT, ip="198.51.100.7")
    elsewhere = post(Client(), ops_user.username, RIGHT, ip="198.51.100.8")

    assert wrong == [200, 200, 200]
    assert refused.status_code == 429
    assert elsewhere.status_code == 302


def _page_without_tokens(response) -> str:
    body = response.content.decode()
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    return re.sub(r'name="username" id="id_username" value="[^"]*"', "", body)


@pytest.mark.django_db
def test_the_answers_do_not_tell_whether_an_account_exists(ops_user, limits):
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 100
    real, ghost = Client(), Client()

    real_wrong = [post(real, ops_user.username) for _ in range(3)]
    ghost_wrong = [post(ghost, "nobody-by-this-name") for _ in range(3)]
    real_paused = post(real, ops_user.username, RIGHT)
    ghost_paused = post(ghost, "nobody-by-this-name", RIGHT)

    assert [r.status_code for r in real_wrong] == [r.status_code for r in ghost_wrong]
    assert _page_without_tokens(real_wrong[0]) == _page_without_tokens(ghost_wrong[0])
    assert (real_paused.status_code, ghost_paused.status_code) == (429, 429)
    assert _page_without_tokens(real_paused) == _page_without_tokens(ghost_paused)


@pytest.mark.django_db
def test_a_completed_sign_in_clears_the_accounts_failures_not_the_addresss(
    client, ops_user, limits
):
    limits.AXES_FAILURE_LIMIT = 2
    post(client, ops_user.username)

    ok = post(client, ops_user.username, RIGHT)
    client.logout()
    post(client, ops_user.username)
    again = post(client, ops_user.username, RIGHT)

    assert (ok.status_code, again.status_code) == (302, 302)
    counters = {c.key: c.failures for c in SignInCounter.objects.all()}
    assert counters == {"account:olive-ops": 0, "ip:198.51.100.1": 2}


@pytest.mark.django_db
def test_a_right_password_is_no_failure(client, ops_user, limits):
    for _ in range(5):
        assert post(Client(), ops_user.username, RIGHT).status_code == 302

    assert SignInCounter.objects.get(key="ip:198.51.100.1").failures == 0


@pytest.mark.django_db
def test_a_lock_opens_after_the_cool_off(client, ops_user, limits):
    for _ in range(3):
        post(client, ops_user.username)
    assert post(client, ops_user.username, RIGHT).status_code == 429

    SignInCounter.objects.update(last_failure_at=timezone.now() - timedelta(minutes=16))

    assert post(client, ops_user.username, RIGHT).status_code == 302


@pytest.mark.django_db
def test_the_user_name_counts_whatever_its_case_or_blanks(client, ops_user, limits):
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 100
    for spelling in ("OLIVE-OPS", " olive-ops", "Olive-Ops "):
        post(client, spelling, ip="198.51.100.2")

    assert post(client, ops_user.username, RIGHT).status_code == 429


class SlowHasher(MD5PasswordHasher):
    """Checks take a while, as real password hashes do: wide open for a check-then-count race.
    Counts the passwords it checks."""

    algorithm = "slow_md5"
    checked = 0
    lock = threading.Lock()

    def verify(self, password: str, encoded: str) -> bool:
        with SlowHasher.lock:
            SlowHasher.checked += 1
        threading.Event().wait(0.15)
        return super().verify(password, encoded)


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_get_no_more_tries_than_the_limit(limits):
    # Given a password check slow enough for every racer to start before any failure counts
    limits.PASSWORD_HASHERS = ["tests.test_sign_in.SlowHasher"]
    limits.AXES_FAILURE_LIMIT = 4
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 1000
    User.objects.create_user("racer", password=RIGHT)
    SlowHasher.checked = 0
    racers, start = 16, threading.Barrier(16)
    statuses: list[int] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        start.wait()
        try:
            status = post(Client(), "racer", f"guess-{n}", ip=f"198.51.100.{n + 1}").status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    # When 16 guesses from 16 addresses race for one account
    threads = [threading.Thread(target=guess, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then exactly the limit had their password checked; the rest were refused unchecked
    assert SlowHasher.checked == 4
    assert sorted(statuses) == [200] * 4 + [429] * 12
    assert SignInCounter.objects.get(key="account:racer").failures == 4


# --- unlocking ---------------------------------------------------------------------------------


def _lock(username: str) -> None:
    for n in range(3):
        post(Client(), username, ip=f"198.51.100.{n + 20}")


@pytest.mark.django_db
def test_a_superuser_unlocks_an_account_in_the_portal(client, ops_user, admin_user, limits):
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 100
    _lock(ops_user.username)
    assert sign_in_limits.locked_accounts([ops_user.username]) == {ops_user.username}
    client.force_login(admin_user)
    detail = client.get(reverse("redemption:staff_user_detail", args=[ops_user.pk]))

    response = client.post(reverse("redemption:staff_user_unlock", args=[ops_user.pk]))

    assert b'data-testid="locked"' in detail.content
    assert response.status_code == 302
    assert sign_in_limits.locked_accounts([ops_user.username]) == set()
    assert post(Client(), ops_user.username, RIGHT).status_code == 302
    event = AuditEvent.objects.get(action="staff_user.unlock")
    assert (event.actor_label, event.details["username"]) == (admin_user.username, "olive-ops")


@pytest.mark.django_db
def test_only_superusers_may_unlock(client, ops_user, support_user, limits):
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 100
    _lock(ops_user.username)
    client.force_login(support_user)

    response = client.post(reverse("redemption:staff_user_unlock", args=[ops_user.pk]))

    assert response.status_code == 403
    assert sign_in_limits.locked_accounts([ops_user.username]) == {ops_user.username}


@pytest.mark.django_db
def test_unlock_staff_command_unlocks_and_is_audited(ops_user, limits, capsys):
    limits.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 100
    _lock(ops_user.username)

    call_command("unlock_staff", ops_user.username)

    assert "Unlocked “olive-ops”" in capsys.readouterr().out
    assert post(Client(), ops_user.username, RIGHT).status_code == 302
    assert AuditEvent.objects.get(action="staff_user.unlock").actor_label == "cli:unlock_staff"


@pytest.mark.django_db
def test_unlock_staff_command_names_an_unknown_user(db):
    with pytest.raises(CommandError, match="No staff user is named “ghost”"):
        call_command("unlock_staff", "ghost")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_the_sweep_prunes_counters_quiet_past_the_cool_off(client, limits):
    post(client, "someone", ip="198.51.100.3")
    post(client, "quiet-one", ip="198.51.100.4")
    SignInCounter.objects.filter(key__in=["account:quiet-one", "ip:198.51.100.4"]).update(
        last_failure_at=timezone.now() - timedelta(minutes=16)
    )

    report = housekeeping.sweep()

    assert report.sign_in_counters_pruned == 2
    assert set(SignInCounter.objects.values_list("key", flat=True)) == {
        "account:someone",
        "ip:198.51.100.3",
    }
