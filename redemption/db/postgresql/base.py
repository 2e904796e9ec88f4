"""Django's PostgreSQL backend, with a health check that costs no round trip when it can.

With CONN_HEALTH_CHECKS, Django checks a reused connection before its first query of every
request by sending `SELECT 1`: on the redeem path that is one round trip in two. A server
that ends a connection — restarted, `pg_terminate_backend`, PgBouncer restarted — tells the
client (an error message, then end of file), so an idle connection with nothing to read is
one the server still holds. Only when something is waiting to be read does the check send
`SELECT 1`, which then decides as before. A host that vanished without a word passes the check
as it would pass `SELECT 1` only after a timeout; its first query fails, and the connection is
dropped at the end of that request as Django does for any failed one.
"""

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

# `is_usable` is typed on the base class only; the connection it reads is a psycopg one.
_PostgresWrapper: Any = base.DatabaseWrapper


class DatabaseWrapper(_PostgresWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed:
            return False
        if conn.info.transaction_status != TransactionStatus.IDLE:
            return bool(super().is_usable())
        try:
            waiting, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return True if not waiting else bool(super().is_usable())
