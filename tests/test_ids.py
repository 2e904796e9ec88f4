"""Time-ordered ids: one at a time, and many at once for bulk inserts."""

import time
import uuid

from redemption.ids import uuid7, uuid7_texts


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_many_ids_at_once_are_distinct_increasing_version_7_uuids_of_this_millisecond():
    before = time.time_ns() // 1_000_000
    texts = uuid7_texts(5_000)
    after = time.time_ns() // 1_000_000

    parsed = [uuid.UUID(text) for text in texts]
    assert [str(value) for value in parsed] == texts  # canonical text, as PostgreSQL prints it
    assert len(set(texts)) == 5_000
    assert texts == sorted(texts)  # rows append at the right edge of the id indexes
    assert {value.version for value in parsed} == {7}
    assert {value.variant for value in parsed} == {uuid.RFC_4122}
    assert len({_ms(value) for value in parsed}) == 1
    assert before <= _ms(parsed[0]) <= after


def test_ids_drawn_in_a_later_millisecond_sort_after_earlier_ones():
    first = uuid7_texts(10)
    time.sleep(0.002)
    later = uuid7_texts(10)
    time.sleep(0.002)
    single = uuid7()

    assert max(first) < min(later)
    assert single.version == 7
    assert str(single) > max(later)
