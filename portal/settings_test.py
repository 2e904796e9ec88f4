"""Settings for the test suite: production settings with a throwaway key and plain HTTP."""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnop")
os.environ.setdefault("DJANGO_SECURE", "0")
# A fresh cache namespace per test session (inherited by subprocesses the tests start), so
# rate-limit counters left in a shared Redis by an earlier run cannot leak into this one.
os.environ.setdefault("CACHE_KEY_PREFIX", "test-" + secrets.token_hex(6))
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# The suite's webhook receivers listen on http://127.0.0.1 (inherited by the processes the
# tests start); the tests of the webhook target rules switch these off where they need them.
os.environ.setdefault("FULFILLMENT_ALLOW_HTTP", "1")
os.environ.setdefault("FULFILLMENT_ALLOW_PRIVATE_NETWORKS", "1")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users only
