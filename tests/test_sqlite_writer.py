"""The SQLite backend queues write transactions on locks of its own: one per process, then a
lock file shared by the processes.

SQLite's busy handler polls with growing sleeps; the backend (redemption/db/sqlite_writer) lets
writers take turns on its locks instead, and never lets them block anyone for good. Real
threads and processes on the real database file.
"""

import subprocess
import sys
import threading
import time

import pytest
from django.db import connection, connections, transaction

from redemption.db.sqlite_writer import base as writer
from redemption.models import CodeType
from tests.factories import CodeTypeFactory

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]


def test_the_settings_put_sqlite_behind_the_writer_queue():
    assert isinstance(connections["default"], writer.DatabaseWrapper)
    assert connection.transaction_mode == "IMMEDIATE"


def test_a_write_transaction_holds_the_lock_until_it_commits_or_rolls_back():
    assert not writer._WRITER.locked()
    with transaction.atomic():
        assert writer._WRITER.locked()
        with transaction.atomic():  # a savepoint takes nothing more
            CodeTypeFactory(name="inner")
        assert writer._WRITER.locked()
    assert not writer._WRITER.locked()

    with pytest.raises(RuntimeError), transaction.atomic():
        CodeTypeFactory(name="rolled-back")
        raise RuntimeError("undo")
    assert not writer._WRITER.locked()
    assert list(CodeType.objects.values_list("name", flat=True)) == ["inner"]


def _in_thread(work, results: list, name: str) -> threading.Thread:
    def run() -> None:
        try:
            results.append((name, work()))
        except Exception as error:  # reported to the test below
            results.append((name, error))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_threads_take_turns_and_every_transaction_lands():
    results: list = []

    def work(n: int):
        def write() -> int:
            for i in range(15):
                with transaction.atomic():
                    CodeTypeFactory(name=f"t{n}-{i}")
            return 15

        return write

    threads = [_in_thread(work(n), results, f"t{n}") for n in range(8)]
    for thread in threads:
        thread.join(60)

    assert sorted(value for _, value in results) == [15] * 8, results
    assert CodeType.objects.count() == 120
    assert not writer._WRITER.locked()


def test_a_transaction_left_open_slows_the_others_but_never_blocks_them(monkeypatch):
    monkeypatch.setattr(writer, "LOCK_WAIT", 0.3)
    opened, results = threading.Event(), []

    def slow() -> str:
        with transaction.atomic():
            CodeTypeFactory(name="slow")
            opened.set()
            time.sleep(1.0)
        return "slow done"

    def quick() -> str:
        opened.wait(10)
        with transaction.atomic():  # waits 0.3 s for the lock, then on SQLite itself
            CodeTypeFactory(name="quick")
            return f"quick done, holding the lock: {connection._holds_writer}"

    threads = [_in_thread(slow, results, "slow"), _in_thread(quick, results, "quick")]
    for thread in threads:
        thread.join(30)

    assert results == [("slow", "slow done"), ("quick", "quick done, holding the lock: False")]
    assert set(CodeType.objects.values_list("name", flat=True)) == {"slow", "quick"}
    assert not writer._WRITER.locked()


def _hold_lock_file(path: str) -> subprocess.Popen:
    """Another process holding the database's lock file until its stdin closes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_processes_take_turns_on_the_lock_file_and_a_stuck_one_blocks_nobody(monkeypatch):
    lock_file = f"{connection.settings_dict['NAME']}.writer"
    with transaction.atomic():
        assert connection._holds_file is not None, "a transaction holds the lock file"
    assert connection._holds_file is None

    monkeypatch.setattr(writer, "LOCK_WAIT", 0.3)
    holder = _hold_lock_file(lock_file)
    try:
        with transaction.atomic():  # waits 0.3 s for the other process, then goes on
            assert connection._holds_file is None and connection._holds_writer
            CodeTypeFactory(name="written-anyway")
    finally:
        holder.communicate("")  # the other process lets go and ends

    with transaction.atomic():
        assert connection._holds_file is not None
    assert CodeType.objects.filter(name="written-anyway").exists()
