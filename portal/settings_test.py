"""Settings for the test suite: production settings with a throwaway key and plain HTTP."""

import atexit
import os
import secrets
import shutil
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnop")
os.environ.setdefault("DJANGO_SECURE", "0")
# A fresh cache namespace per test session (inherited by subprocesses the tests start), so
# rate-limit counters left in a shared Redis by an earlier run cannot leak into this one.
os.environ.setdefault("CACHE_KEY_PREFIX", "test-" + secrets.token_hex(6))
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# Metrics of a test session (and of the processes it starts) go to a directory of its own,
# never into var/metrics where `make serve` keeps the real ones.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = tempfile.mkdtemp(prefix="portal-test-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    atexit.register(shutil.rmtree, _metrics_dir, ignore_errors=True)
# The suite's webhook receivers listen on http://127.0.0.1 (inherited by the processes the
# tests start); the tests of the webhook target rules switch these off where they need them.
os.environ.setdefault("FULFILLMENT_ALLOW_HTTP", "1")
os.environ.setdefault("FULFILLMENT_ALLOW_PRIVATE_NETWORKS", "1")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users only

# Tests serve static files straight from static/ (no collectstatic, no hashed names); the
# production storage is proven by tests/e2e/test_production.py, which runs collectstatic itself.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None  # type: ignore[assignment]  # nothing collected: WhiteNoise looks nowhere
WHITENOISE_USE_FINDERS = True
