"""Reading a job's input ahead in a background thread: same items, same errors, no thread left."""

import sys
import threading

import pytest

from redemption.services.bulk.ahead import SWITCH_INTERVAL, read_ahead


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_every_item_comes_through_in_order_and_the_thread_ends():
    assert list(read_ahead(iter(range(2_500)), block=100)) == list(range(2_500))
    assert _readers() == []


def test_an_error_in_the_source_is_raised_after_the_items_before_it():
    def source():
        yield from range(5)
        raise ValueError("line 6 is broken")

    got = []
    with pytest.raises(ValueError, match="line 6"):
        for item in read_ahead(source(), block=2):
            got.append(item)

    assert got == [0, 1, 2, 3, 4]
    assert _readers() == []


def test_closing_early_stops_an_endless_source():
    def endless():
        n = 0
        while True:
            yield n
            n += 1

    items = read_ahead(endless(), block=10, depth=1)
    assert [next(items) for _ in range(25)] == list(range(25))
    items.close()

    assert _readers() == []


def test_the_switch_interval_is_short_while_the_thread_runs_and_restored_after():
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL  # the interpreter's default, 5 ms

    def source():
        yield sys.getswitchinterval()  # seen from the reader thread
        raise ValueError("stop")

    items = read_ahead(source(), block=1)
    assert next(items) == SWITCH_INTERVAL
    assert sys.getswitchinterval() == SWITCH_INTERVAL
    with pytest.raises(ValueError):
        next(items)

    assert sys.getswitchinterval() == before


def test_two_read_aheads_ending_out_of_order_put_the_interval_back_once_both_end():
    before = sys.getswitchinterval()
    first = read_ahead(iter(range(3)), block=1)
    second = read_ahead(iter(range(3)), block=1)
    next(first)
    next(second)

    first.close()  # the first to start ends first
    assert sys.getswitchinterval() == SWITCH_INTERVAL
    second.close()

    assert sys.getswitchinterval() == before
    assert _readers() == []
