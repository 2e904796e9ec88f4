"""Production settings pass Django's deployment checks and refuse to start without a secret."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.update(DJANGO_SETTINGS_MODULE="portal.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY="prod-" + "k" * 60,
        DJANGO_ALLOWED_HOSTS="codes.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_debug_mode_runs_without_a_secret_key():
    result = manage("check", DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_security_settings_default_to_the_strict_side_in_production():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; print(s.FULFILLMENT_ALLOW_HTTP, "
        "s.FULFILLMENT_ALLOW_PRIVATE_NETWORKS, s.TRUSTED_PROXY_COUNT, "
        "s.WEBHOOK_SECRET_GRACE_HOURS, s.USER_TOKEN_SIGNING_KEY == s.SECRET_KEY, "
        "s.USER_TOKEN_SIGNING_KEY_FALLBACKS)",
        DJANGO_SECRET_KEY="prod-" + "k" * 60,
        FULFILLMENT_ALLOW_HTTP="",
        FULFILLMENT_ALLOW_PRIVATE_NETWORKS="",
        TRUSTED_PROXY_COUNT="",
        USER_TOKEN_SIGNING_KEY="",
        USER_TOKEN_SIGNING_KEY_FALLBACKS="",
        WEBHOOK_SECRET_GRACE_HOURS="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "0", "24", "True", "[]"]


def test_user_token_signing_keys_are_read_from_the_environment():
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.USER_TOKEN_SIGNING_KEY, ' '.join(s.USER_TOKEN_SIGNING_KEY_FALLBACKS))",
        DJANGO_SECRET_KEY="prod-" + "k" * 60,
        USER_TOKEN_SIGNING_KEY="tokens-2",
        USER_TOKEN_SIGNING_KEY_FALLBACKS=" tokens-1 , tokens-0,",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tokens-2", "tokens-1", "tokens-0"]
