"""The portal as `make serve` runs it: production settings, gunicorn, collected static files.

`scripts/serve` (what `make serve` runs after `make venv`) collects the static files into a
temporary PORTAL_VAR_DIR, migrates the test database and starts gunicorn (gunicorn.conf.py)
and the worker. A real Chromium signs in and opens the main pages; any 404, failed request,
console error or script error fails the test. Ctrl-C then stops the server and the worker.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from playwright.sync_api import expect

from tests.e2e.helpers import populate, role_groups
from tests.processes import Children, children_of, free_port, production_env, running, wait_http

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple 42"


def _production_superuser() -> User:
    """A superuser whose password hash the production settings can check (no test hasher)."""
    user = User.objects.create(username="prod-admin", is_superuser=True, is_staff=True)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "prodsalt0123456789")
    user.save(update_fields=["password"])
    return user


@pytest.fixture
def served(tmp_path):
    """`scripts/serve` on a free port; yields (base URL, its process, the children's log)."""
    var_dir = tmp_path / "var"
    port = free_port()
    children = Children(tmp_path, production_env(var_dir))
    proc = children.start(
        "serve",
        ["bash", "scripts/serve"],
        PY=sys.executable,
        PORT=str(port),
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}",
    )
    try:
        wait_http(children, "serve", port)
        yield f"http://127.0.0.1:{port}", proc, children, var_dir
    finally:
        children.stop()


def test_production_portal_serves_its_styles_and_scripts_and_stops_on_ctrl_c(page, served):
    base, proc, children, var_dir = served
    data = populate(codes=3)
    _production_superuser()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    # Chromium fetches the favicon after the page's load event and drops the fetch
    # (net::ERR_ABORTED) when the test moves on to the next page first. A dropped request is
    # no fault if the same URL was served elsewhere; any other failure is one.
    dropped: set[str] = set()
    served_ok: set[str] = set()

    def failed(request) -> None:
        if request.failure == "net::ERR_ABORTED":
            dropped.add(request.url)
        else:
            problems.append(f"failed: {request.url} {request.failure}")

    def answered(response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")
        else:
            served_ok.add(response.url)

    page.on("requestfailed", failed)
    page.on("response", answered)
    static: dict[str, dict[str, str]] = {}
    page.on(
        "response",
        lambda r: static.__setitem__(r.url, r.headers) if "/static/" in r.url else None,
    )

    # Given the portal under production settings, when a superuser signs in and opens the
    # main pages of every area:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill("prod-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    code = data["codes"][0]
    pages = [
        "/",
        "/design/redemption-codes/",
        "/design/redemption-codes/new/",
        "/design/redemption-codes/xmas-2026/",
        "/design/redemption-codes/xmas-2026/edit/",
        "/design/redemption-codes/xmas-2026/generate/",
        "/design/redemption-codes/xmas-2026/import/",
        "/design/redemption-codes/xmas-2026/delete-codes/",
        "/monitoring/redemption-codes/",
        f"/monitoring/redemption-codes/?q={code.scan_code}",
        f"/monitoring/redemption-codes/{code.canonical}/",
        "/users/redemption-codes/?profile=p-42",
        "/jobs/",
        f"/jobs/{data['job'].pk}/",
        "/audit/",
        "/server-keys/",
        "/accounts/password/",
    ]
    for path in pages:
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        # Then every page is styled by the collected stylesheet (its page colour).
        expect(page.locator("body")).to_have_css("background-color", "rgb(244, 246, 249)")

    # Then nothing was missing or refused anywhere, and the static files were the collected,
    # content-hashed, compressed copies, cached for good.
    assert problems == []
    assert dropped <= served_ok, sorted(dropped - served_ok)
    hashed = r"/static/redemption/portal\.[0-9a-f]{12}\."
    css = [url for url in static if re.search(hashed + "css$", url)]
    js = [url for url in static if re.search(hashed + "js$", url)]
    assert css and js, sorted(static)
    assert static[css[0]].get("content-encoding") in {"gzip", "br"}
    assert "immutable" in static[css[0]].get("cache-control", "")
    assert static[js[0]]["content-type"].startswith("text/javascript")
    assert (var_dir / "staticfiles" / "staticfiles.json").is_file()
    key_file = var_dir / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    # When the operator presses Ctrl-C (SIGINT to the foreground process group), then the
    # server and the worker both stop, and so does `make serve`.
    started = children_of(proc.pid)
    assert len(started) == 2, children.log("serve")[-3000:]
    web_workers = [pid for parent in started for pid in children_of(parent)]
    assert len(web_workers) == 2
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=45)
    except subprocess.TimeoutExpired:
        pytest.fail("make serve did not stop on Ctrl-C:\n" + children.log("serve")[-3000:])
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in started + web_workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in started + web_workers if running(pid)]
