"""Produce a job's input in a background thread while the job waits for the database."""

import queue
import sys
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager

# Seconds a thread may hold the GIL while another waits for it, while a read-ahead runs.
SWITCH_INTERVAL = 0.0005


def read_ahead[T](source: Iterator[T], *, block: int, depth: int = 2) -> Generator[T]:
    """Yield `source`'s items, drawn by a background thread up to `depth` blocks ahead.

    A chunk of a job spends most of its time waiting for the database; drawing codes or
    parsing lines meanwhile takes their Python time off the job's path. `source` must not
    touch the database (the thread has no connection of its own). An error in `source` is
    raised here, where its item would have been. Close the generator to stop the thread.

    While the thread runs, the interpreter's switch interval is at most SWITCH_INTERVAL: a
    thread back from the database waits that long at most for the GIL the busy thread holds
    (at the default 5 ms, the database sat idle through a fifth of a bulk import).
    """
    blocks: queue.Queue[list[T] | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: list[T] | BaseException | None) -> None:
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        items: list[T] = []
        try:
            for item in source:
                items.append(item)
                if len(items) >= block:
                    put(items)
                    items = []
                    if stop.is_set():
                        return
            put(items)
            put(None)
        except BaseException as err:  # handed to the consumer, raised there
            put(items)
            put(err)

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    with _short_switch_interval():
        thread.start()
        try:
            while (got := blocks.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                yield from got
        finally:
            stop.set()
            thread.join()


# Read-aheads running in this process, and the switch interval the first of them found.
_running = 0
_found_interval = 0.0
_interval_lock = threading.Lock()


@contextmanager
def _short_switch_interval() -> Iterator[None]:
    """Hold the switch interval at most SWITCH_INTERVAL until the last read-ahead of this
    process ends, then put back what the first one found (they may end in any order)."""
    global _running, _found_interval
    with _interval_lock:
        if not _running:
            _found_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_found_interval, SWITCH_INTERVAL))
        _running += 1
    try:
        yield
    finally:
        with _interval_lock:
            _running -= 1
            if not _running:
                sys.setswitchinterval(_found_interval)
