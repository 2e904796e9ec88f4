"""The SQLite backend queues the write transactions of one process on a lock of its own.

SQLite's busy handler polls with growing sleeps; the backend (redemption/db/sqlite_writer) lets
the threads of a process take turns on a lock instead, and never lets that lock block anyone
for good. Real threads on the real database file.
"""

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
