"""Failed-redeem limits over HTTP: 429 + Retry-After, per profile and per IP, across processes."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection

from redemption.models import Code, State
from tests.api.conftest import mint
from tests.factories import CodeFactory

pytestmark = pytest.mark.django_db

CLIENT = "/api/v1/client/redeem"
SERVER = "/api/v1/server/redeem"


def _fail(api, n: int, start: int = 0) -> list[int]:
    return [api.post(CLIENT, {"scanCode": f"MISSING-{i:04d}-X"}).status for i in range(start, n)]


def test_the_eleventh_failed_redeem_of_a_profile_is_429_with_retry_after(user_api):
    code = CodeFactory()
    assert _fail(user_api, 10) == [404] * 10

    response = user_api.post(CLIENT, {"scanCode": code.scan_code})

    assert (response.status, response.code) == (429, "REDEMPTION_CODE_MAX_FAILED_EXCEEDED_FOR_USER")
    assert response.error["reasonCode"] == 40765
    retry = int(response["Retry-After"])
    assert 1 <= retry <= settings.REDEEM_FAILED_WINDOW_SECONDS
    assert response.error["details"]["retryAfterSeconds"] == retry
    assert Code.objects.get(pk=code.pk).state == State.AVAILABLE  # not even looked up


def test_user_token_calls_are_also_limited_per_client_ip(api, settings):
    settings.REDEEM_MAX_FAILED_PER_IP = 3
    for profile in ["p-a", "p-b", "p-c"]:
        assert _fail(api.as_(mint(profile)), 1) == [404]

    same_ip = api.as_(mint("p-d")).post(CLIENT, {"scanCode": "MISSING-0000-X"})
    other_ip = api.as_(mint("p-d")).post(
        CLIENT, {"scanCode": "MISSING-0000-X"}, REMOTE_ADDR="10.0.0.7"
    )

    assert same_ip.status == 429
    assert other_ip.status == 404


def test_a_server_key_redeeming_for_many_profiles_is_limited_per_profile_only(server_api, settings):
    settings.REDEEM_MAX_FAILED_PER_IP = 3
    statuses = [
        server_api.post(SERVER, {"profileId": f"s-{i}", "scanCode": "MISSING-0000-X"}).status
        for i in range(6)
    ]
    assert statuses == [404] * 6
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 1
    limited = server_api.post(SERVER, {"profileId": "s-0", "scanCode": "MISSING-0000-X"})
    assert limited.status == 429


def test_success_and_redeemed_by_self_do_not_count(user_api, settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 2
    code = CodeFactory()
    assert user_api.post(CLIENT, {"scanCode": code.scan_code}).status == 200
    for _ in range(3):
        assert user_api.post(CLIENT, {"scanCode": code.scan_code}).status == 409
    assert _fail(user_api, 2) == [404, 404]
    assert user_api.post(CLIENT, {"scanCode": code.scan_code}).status == 429


WORKER = """
import json, sys
import django
django.setup()
from django.test import Client
token, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = Client()
out = []
for i in range(first, first + count):
    r = client.post(
        "/api/v1/client/redeem",
        data=json.dumps({"scanCode": f"MISSING-{i:04d}-X"}),
        content_type="application/json",
        headers={"Authorization": "Bearer " + token},
    )
    out.append([r.status_code, dict(r.headers), r.content.decode()])
print(json.dumps(out))
"""


def _database_env() -> dict[str, str]:
    """Point a fresh process at the database this test is using (the test database)."""
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings_test"}
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return env


def _other_process(token: str, first: int, count: int) -> list:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, token, str(first), str(count)],
        cwd=settings.BASE_DIR,
        env=_database_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_failures_are_counted_across_processes_sharing_the_database(api, checker):
    token = mint("p-two-procs")
    here = api.as_(token)
    assert _fail(here, 5) == [404] * 5

    there = _other_process(token, 5, 6)

    for status, headers, body in there:
        reply = SimpleNamespace(
            status_code=status,
            get=lambda name, default="", h=headers: h.get(name, default),
            has_header=lambda name, h=headers: name in h,
        )
        checker.check("POST", CLIENT, reply, body.encode())
    assert [status for status, _, _ in there] == [404] * 5 + [429]
    assert int(there[-1][1]["Retry-After"]) >= 1
    back_here = here.post(CLIENT, {"scanCode": "MISSING-9999-X"})
    assert back_here.status == 429
    assert int(back_here["Retry-After"]) >= 1


# --- behind a proxy (TRUSTED_PROXY_COUNT) -----------------------------------------------------

PEER = "10.0.0.1"  # the load balancer, as the app server sees it


def _failed_redeem(api, profile: str, forwarded: str) -> int:
    return (
        api.as_(mint(profile))
        .post(
            CLIENT,
            {"scanCode": "MISSING-0000-X"},
            REMOTE_ADDR=PEER,
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        .status
    )


def test_behind_a_proxy_one_clients_failures_do_not_block_another(api, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REDEEM_MAX_FAILED_PER_IP = 3
    for profile in ["p-a", "p-b", "p-c"]:
        assert _failed_redeem(api, profile, "203.0.113.5") == 404

    assert _failed_redeem(api, "p-d", "6.6.6.6, 203.0.113.5") == 429  # spoofing does not help
    assert _failed_redeem(api, "p-d", "203.0.113.99") == 404


def test_ipv6_clients_of_one_slash_64_share_a_limit(api, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REDEEM_MAX_FAILED_PER_IP = 2
    assert _failed_redeem(api, "p-a", "2001:db8:1:2::1") == 404
    assert _failed_redeem(api, "p-b", "2001:db8:1:2::ffff") == 404

    assert _failed_redeem(api, "p-c", "2001:db8:1:2:1234::9") == 429
    assert _failed_redeem(api, "p-c", "2001:db8:1:3::1") == 404
