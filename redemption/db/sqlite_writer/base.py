"""Django's SQLite backend, with the writers of one process queued on a lock, not on SQLite.

SQLite lets one transaction write at a time. A connection that finds the write lock taken
waits in SQLite's busy handler, which polls with growing sleeps (1, 2, 5 … 100 ms): under
load a waiter keeps missing the moments the lock is free, and the last of 16 clients waits
hundreds of ms for a transaction that takes one. Here a thread takes this process's writer
lock before `BEGIN IMMEDIATE` (every `atomic` block, settings.DATABASES OPTIONS
transaction_mode) and gives it back when the transaction ends, so the threads of a process
hand the write lock to each other in order and only one of them at a time polls SQLite
against other processes.

The lock only orders writers; SQLite still decides. A thread that waited `LOCK_WAIT` seconds
goes on without it (SQLite's own busy timeout then applies), so a transaction left open by
mistake can slow others but never block them for good.
"""

import threading
from typing import Any

from django.db.backends.sqlite3 import base

LOCK_WAIT = 30.0  # seconds; the busy timeout the settings give SQLite
_WRITER = threading.Lock()
# The transaction hooks overridden below are private to Django, so absent from its stubs.
_SQLiteWrapper: Any = base.DatabaseWrapper


class DatabaseWrapper(_SQLiteWrapper):
    _holds_writer = False

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode in ("IMMEDIATE", "EXCLUSIVE") and not self._holds_writer:
            self._holds_writer = _WRITER.acquire(timeout=LOCK_WAIT)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_writer()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_writer()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_writer()

    def _release_writer(self) -> None:
        if self._holds_writer:
            self._holds_writer = False
            _WRITER.release()
