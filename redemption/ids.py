"""Time-ordered UUIDs (version 7): new rows land at the right edge of the primary-key index."""

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """Return a UUIDv7: 48-bit Unix milliseconds, then 74 random bits (RFC 9562)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10))
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    return uuid.UUID(int=value)


# The RFC 9562 variant (binary 10) with two random bits, as the hex digit that carries them.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid7_texts(count: int) -> list[str]:
    """Return `count` UUIDv7s as text, all of this millisecond, in increasing order.

    One clock read and one random draw for all of them (per id, `str(uuid7())` was most of a
    bulk COPY's Python time). Sorted, a chunk's rows append at the right edge of the indexes
    that end in the id instead of landing at random among the last chunk's: a quarter less
    database time per chunk, and denser index pages.
    """
    ms = f"{(time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF:012x}"
    head = f"{ms[:8]}-{ms[8:]}-7"
    pool = os.urandom(10 * count).hex()
    variant = _VARIANT_DIGIT
    texts = []
    for i in range(0, 20 * count, 20):
        rand_a, rand_b = pool[i : i + 3], pool[i + 4 : i + 19]
        texts.append(f"{head}{rand_a}-{variant[pool[i + 3]]}{rand_b[:3]}-{rand_b[3:]}")
    texts.sort()
    return texts


# The same in SQL for PostgreSQL bulk inserts (gen_random_uuid() with its first 48 bits replaced
# by the clock and the version nibble set to 7).
POSTGRES_UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing"
    " substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)"
    " from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
)


def uuid_or_none(value: object) -> uuid.UUID | None:
    """Return `value` as a UUID (a UUID or any usual spelling of one), or None if it is not."""
    if isinstance(value, uuid.UUID):
        return value
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
