"""Serving in production: gunicorn.conf.py, the secret key `make serve` keeps, deploy/ files.

The whole stack in a browser is tests/e2e/test_production.py.
"""

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands
from gunicorn.config import Config

from tests.processes import ROOT

DEPLOY = ROOT / "deploy"


def gunicorn_conf(monkeypatch, **env: str) -> dict:
    for name in ("PORT", "GUNICORN_WORKERS", "WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_runs_threaded_workers_from_the_core_count_on_port(monkeypatch):
    conf = gunicorn_conf(monkeypatch)
    cores = len(os.sched_getaffinity(0))

    assert conf["wsgi_app"] == "portal.wsgi:application"
    assert conf["worker_class"] == "gthread"
    assert conf["workers"] == 2 * cores + 1
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["accesslog"] == "-"
    assert conf["logconfig_dict"] is settings.LOGGING
    assert conf["graceful_timeout"] >= 30 and conf["timeout"] >= 30


@pytest.mark.parametrize(
    ("env", "workers", "bind"),
    [
        ({"WEB_CONCURRENCY": "3"}, 3, "0.0.0.0:8000"),
        ({"GUNICORN_WORKERS": "7", "WEB_CONCURRENCY": "3"}, 7, "0.0.0.0:8000"),
        ({"PORT": "9123"}, None, "0.0.0.0:9123"),
    ],
)
def test_gunicorn_takes_workers_and_port_from_the_environment(monkeypatch, env, workers, bind):
    conf = gunicorn_conf(monkeypatch, **env)

    assert conf["bind"] == [bind]
    if workers is not None:
        assert conf["workers"] == workers


def _in_a_fresh_process(code: str) -> str:
    """What `code` prints, run by a new interpreter in the repository (development settings)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_DEBUG": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_worker_imports_the_urlconf_and_every_view_as_it_boots():
    """gunicorn loads portal.wsgi in each worker before the worker accepts: its first request
    must not be the one that imports every view while the requests behind it wait."""
    booted = _in_a_fresh_process(
        "import sys, portal.wsgi; "
        "print(*(m in sys.modules for m in ('portal.urls', 'redemption.views.design',"
        " 'redemption.api.handlers', 'redemption.braincloud.dispatcher')))"
    )
    assert booted.split() == ["True"] * 4


def test_a_worker_hides_what_the_app_made_at_boot_from_the_garbage_collector():
    """gunicorn calls post_worker_init once the worker has loaded the app. What exists then
    (Django, the URLconf, every view) lives as long as the worker: frozen, a full collection
    no longer walks it, which paused every thread of the worker for tens of ms."""
    booted = _in_a_fresh_process(
        "import gc, runpy, portal.wsgi; "
        "conf = runpy.run_path('gunicorn.conf.py'); "
        "before = len(gc.get_objects()); "
        "conf['post_worker_init'](None); "
        "print(before, gc.get_freeze_count(), len(gc.get_objects()))"
    )
    before, frozen, left = map(int, booted.split())
    assert before > 20_000
    assert frozen >= before
    assert left < before // 20


def _secret_key(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/secret_key.py", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_make_serve_generates_its_secret_key_once_readable_by_the_owner_only(tmp_path):
    key_file = tmp_path / "secret_key"

    first, second = _secret_key(key_file), _secret_key(key_file)

    assert first.returncode == second.returncode == 0
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout == key_file.read_text()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "generated" in first.stderr and "generated" not in second.stderr


def test_make_serve_refuses_a_secret_key_others_may_read(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("k" * 60)
    key_file.chmod(0o644)

    result = _secret_key(key_file)

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"chmod 600 {key_file}" in result.stderr


# --- deploy/ ----------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


@pytest.mark.parametrize(
    "unit", ["portal-web.service", "portal-staff.service", "portal-worker.service"]
)
def test_deploy_units_run_commands_that_exist(unit):
    entries = _unit(unit)
    commands = entries.get("ExecStartPre", []) + entries["ExecStart"]
    known = get_commands()

    for command in commands:
        argv = command.split()
        assert argv[0].startswith("/srv/portal/.venv/bin/")
        if argv[1:2] == ["manage.py"]:
            assert argv[2] in known, command
        if "-c" in argv:
            assert (ROOT / argv[argv.index("-c") + 1]).is_file(), command
    assert entries["EnvironmentFile"] == ["/etc/portal/portal.env"]


def test_the_staff_pool_is_the_web_unit_on_its_own_port_with_fewer_workers():
    web, staff = _unit("portal-web.service"), _unit("portal-staff.service")
    parser = Config().parser()

    web_args = parser.parse_args(web["ExecStart"][0].split()[1:])
    staff_args = parser.parse_args(staff["ExecStart"][0].split()[1:])

    assert staff_args.config == web_args.config == "gunicorn.conf.py"
    assert staff_args.bind == ["0.0.0.0:8001"] and web_args.bind is None  # 8000 from the file
    assert staff_args.workers == 2
    assert "portal-web.service" in staff["After"][0]  # it collects the static files
    for key in ("User", "WorkingDirectory", "EnvironmentFile", "ReadWritePaths", "Type"):
        assert staff[key] == web[key], key


def test_deploy_environment_names_only_variables_the_portal_reads_and_readme_explains():
    example = (DEPLOY / "portal.env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    sources = (ROOT / "portal" / "settings.py").read_text() + (
        ROOT / "gunicorn.conf.py"
    ).read_text()
    readme = (ROOT / "README.md").read_text()

    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "PORTAL_VAR_DIR", "METRICS_TOKEN"} <= names
    for name in names - {"GUNICORN_CMD_ARGS"}:  # gunicorn reads that one itself
        assert f'"{name}"' in sources, name
        assert f"`{name}`" in readme, name
