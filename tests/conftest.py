"""Shared fixtures: actors for every role, factories for the domain, a real webhook."""

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from redemption.actors import Actor, Profile
from tests import factories
from tests.webhook import WebhookServer


def pytest_collection_modifyitems(config, items):
    """Deselect (never skip) the tests marked `postgres` when the database is SQLite, and
    those marked `sqlite` when it is PostgreSQL.

    The first stop and start PostgreSQL servers or put PgBouncer in front of one; the second
    test the SQLite backend itself. `.ci/run` fails on any skip, and a deselected test is not one.
    """
    other = (
        "sqlite" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "postgres"
    )
    kept, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker(other) else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Start every test with empty counters, as the database rollback does for DB-backed ones.

    With CACHE_URL (Redis) the rate-limit and sign-in counters live in the cache, which no
    transaction rolls back; delete only this session's keys (its own KEY_PREFIX).
    """
    _clear_cache()
    yield
    _clear_cache()


def _clear_cache() -> None:
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()


@pytest.fixture
def system_actor() -> Actor:
    return Actor.system("test")


def _staff(username: str, role: str | None, *, superuser: bool = False) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username + "-123!")
    if superuser:
        user.is_superuser = True
        user.is_staff = True
        user.save()
    if role:
        # get_or_create: a transactional test's flush removes the groups the migration made.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def ops_user(db) -> User:
    return _staff("olive-ops", "Ops")


@pytest.fixture
def support_user(db) -> User:
    return _staff("sam-support", "Support")


@pytest.fixture
def viewer_user(db) -> User:
    return _staff("vera-viewer", "Viewer")


@pytest.fixture
def admin_user(db) -> User:
    return _staff("ada-admin", None, superuser=True)


@pytest.fixture
def ops(ops_user) -> Actor:
    return Actor.staff(ops_user)


@pytest.fixture
def support(support_user) -> Actor:
    return Actor.staff(support_user)


@pytest.fixture
def viewer(viewer_user) -> Actor:
    return Actor.staff(viewer_user)


@pytest.fixture
def profile() -> Profile:
    return Profile("p-42", "Ann")


@pytest.fixture
def code_type(db):
    return factories.CodeTypeFactory()


@pytest.fixture
def shared_type(db):
    return factories.SharedCodeTypeFactory()


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    """A real HTTP webhook on 127.0.0.1; the test sets its answers with `behaviour`."""
    server = WebhookServer().start()
    yield server
    server.stop()
