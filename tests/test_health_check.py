"""The PostgreSQL health check: free on a connection the server still holds, and it still
replaces one the server ended (redemption/db/postgresql). Real backends, ended for real."""

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from redemption.models import CodeType

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _admin() -> psycopg.Connection:
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _last_query(admin: psycopg.Connection, pid: int) -> str:
    row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row[0] if row else ""


def test_a_connection_the_server_still_holds_is_checked_without_a_query():
    assert connection.health_check_enabled
    pid = _backend_pid()  # that backend's last query, until something else runs there

    close_old_connections()  # what every request starts and ends with
    connection.close_if_health_check_failed()  # what its first query would run first

    assert connection.health_check_done
    with _admin() as admin:
        assert _last_query(admin, pid) == "SELECT pg_backend_pid()", "the check sent a query"
    assert _backend_pid() == pid, "the healthy connection was kept"


def test_a_connection_the_server_ended_is_replaced_before_the_next_query():
    pid = _backend_pid()
    with _admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while _last_query(admin, pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    close_old_connections()

    assert CodeType.objects.count() == 0  # no error: the check saw the goodbye and reconnected
    assert _backend_pid() != pid
