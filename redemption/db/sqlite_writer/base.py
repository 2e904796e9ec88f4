"""Django's SQLite backend, with writers queued on locks of their own rather than on SQLite.

SQLite lets one transaction write at a time. A connection that finds the write lock taken
waits in SQLite's busy handler, which polls with growing sleeps (1, 2, 5 … 100 ms): under
load a waiter keeps missing the moments the lock is free, and the last of 16 clients waits
hundreds of ms for a transaction that takes one.

Here a transaction takes two locks before `BEGIN IMMEDIATE` (every `atomic` block, with the
settings' transaction_mode) and gives them back when it ends:
- this process's lock, so its threads hand the write lock to each other in order;
- then a lock file beside the database (`<file>.writer`, flock), so one thread per process
  asks for it, and asks every half millisecond rather than up to every 100 ms.
SQLite still decides; the locks only order the writers. A thread that waited `LOCK_WAIT`
seconds goes on without them (SQLite's own busy timeout then applies), so a transaction left
open by mistake can slow others but never block them for good. A process that dies drops its
lock file lock with it.
"""

import fcntl
import os
import threading
import time
from typing import Any

from django.db.backends.sqlite3 import base

LOCK_WAIT = 30.0  # seconds; the busy timeout the settings give SQLite
POLL = 0.0005  # seconds between two tries of the lock file
_WRITER = threading.Lock()
_LOCK_FILES: dict[tuple[int, str], int] = {}  # (process id, database file) -> descriptor
# The transaction hooks overridden below are private to Django, so absent from its stubs.
_SQLiteWrapper: Any = base.DatabaseWrapper


class DatabaseWrapper(_SQLiteWrapper):
    _holds_writer = False
    _holds_file: int | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode in ("IMMEDIATE", "EXCLUSIVE") and not self._holds_writer:
            self._take_writer()
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

    def _take_writer(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT
        self._holds_writer = _WRITER.acquire(timeout=LOCK_WAIT)
        fd = _lock_file(str(self.settings_dict["NAME"])) if self._holds_writer else None
        if fd is not None and _flock_until(fd, deadline):
            self._holds_file = fd

    def _release_writer(self) -> None:
        if self._holds_file is not None:
            fd, self._holds_file = self._holds_file, None
            fcntl.flock(fd, fcntl.LOCK_UN)
        if self._holds_writer:
            self._holds_writer = False
            _WRITER.release()


def _lock_file(name: str) -> int | None:
    """This process's descriptor of the database's lock file; None for an in-memory one.

    Opened per process: a descriptor inherited across fork would share one lock."""
    if name == ":memory:" or name.startswith("file:"):
        return None
    key = (os.getpid(), name)
    fd = _LOCK_FILES.get(key)
    if fd is None:
        fd = _LOCK_FILES[key] = os.open(
            f"{name}.writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
    return fd


def _flock_until(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)
