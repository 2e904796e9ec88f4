"""Failed-redeem counting per profile and per client IP, in a store every process shares.

The database is the default store; with CACHE_URL set (Redis) the cache is used instead,
and the database again while the cache server is down (`cache_guard`).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from redemption import exceptions as exc
from redemption import metrics, selectors
from redemption.cache_guard import CACHE_DOWN, cache_answered, cache_failed, cache_in_use
from redemption.db import lookups
from redemption.db.redeem_at_once import Limits
from redemption.models import RedeemFailure


@dataclass(frozen=True)
class Bucket:
    key: str
    limit: int

    @property
    def limit_name(self) -> str:
        """The limit as /metrics names it: redeem_profile or redeem_ip."""
        return "redeem_" + self.key.split(":", 1)[0]


def buckets(*, profile_id: str, client_ip: str | None) -> list[Bucket]:
    """The counters a redeem by this profile (and, for user-token calls, this IP) touches."""
    found = [Bucket(f"profile:{profile_id}", settings.REDEEM_MAX_FAILED_PER_PROFILE)]
    if client_ip:
        found.append(Bucket(f"ip:{client_ip}", settings.REDEEM_MAX_FAILED_PER_IP))
    return found


def _window() -> int:
    return settings.REDEEM_FAILED_WINDOW_SECONDS


def check(found: list[Bucket], *, minting_key_id: int | None = None) -> None:
    """Raise MAX_FAILED_EXCEEDED with a retry delay when any bucket is at its limit.

    One round trip for all buckets: this runs before every redeem. A redeem with a user token
    minted by a server key passes `minting_key_id`; the same round trip (on the database store)
    confirms that key still works, else INVALID_CREDENTIALS. Nothing about keys is cached.
    """
    now = timezone.now()
    window = _window()
    if cache_in_use():
        if minting_key_id is not None and not selectors.server_key_alive(minting_key_id, now):
            raise exc.minting_key_dead()
        full = _cache_full(found, now)
        if full is not None:
            if full:
                metrics.rate_limited(limit=full[0].limit_name)
                slot = int(now.timestamp()) // window
                retry = max(1, (slot + 1) * window - int(now.timestamp()))
                raise exc.MaxFailedExceededError(details={"retryAfterSeconds": retry})
            return
    since = now - timedelta(seconds=window)
    key_alive = None if minting_key_id is None else (minting_key_id, now)
    counts = lookups.failures_since([b.key for b in found], since, key_alive=key_alive)
    if key_alive is not None and not counts.get(lookups.KEY_ALIVE):
        raise exc.minting_key_dead()
    for bucket in found:
        if counts.get(bucket.key, 0) >= bucket.limit:
            metrics.rate_limited(limit=bucket.limit_name)
            raise exc.MaxFailedExceededError(
                details={"retryAfterSeconds": _db_retry_after(bucket, since, now, window)}
            )


def at_once_limits(found: list[Bucket], *, minting_key_id: int | None) -> Limits | None:
    """What the one-statement redeem must check itself; None if only `check` may answer.

    With the database as store, the statement counts the buckets itself. With the cache, the
    counters are read here: any bucket at its limit gives None, and the full path's `check`
    then refuses in its usual order (a dead minting key is told before a limit).
    """
    now = timezone.now()
    window = _window()
    since = now - timedelta(seconds=window)
    if cache_in_use():
        full = _cache_full(found, now)
        if full is not None:
            return None if full else Limits(buckets=(), since=since, key_id=minting_key_id)
    return Limits(buckets=[(b.key, b.limit) for b in found], since=since, key_id=minting_key_id)


def _cache_full(found: list[Bucket], now: datetime) -> list[Bucket] | None:
    """The buckets at their limit by the cache's counters of the current window (one round
    trip); None when the cache server did not answer (the database store is used instead)."""
    slot = int(now.timestamp()) // _window()
    try:
        counts = cache.get_many([_cache_key(b, slot) for b in found])
    except CACHE_DOWN as err:
        cache_failed(err)
        return None
    cache_answered()
    return [b for b in found if counts.get(_cache_key(b, slot), 0) >= b.limit]


def _cache_key(bucket: Bucket, slot: int) -> str:
    return f"redeemfail:{bucket.key}:{slot}"


def _db_retry_after(bucket: Bucket, since: datetime, now: datetime, window: int) -> int:
    """Seconds until the oldest failure that keeps the bucket at its limit leaves the window."""
    oldest_counted = (
        RedeemFailure.objects.filter(bucket=bucket.key, at__gt=since)
        .order_by("-at")
        .values_list("at", flat=True)[bucket.limit - 1]
    )
    return max(1, math.ceil((oldest_counted + timedelta(seconds=window) - now).total_seconds()))


def record_failure(found: list[Bucket]) -> None:
    """Count one failed redeem in every bucket (committed on its own, outside the redeem)."""
    now = timezone.now()
    if cache_in_use():
        try:
            _cache_count(found, now)
        except CACHE_DOWN as err:
            cache_failed(err)
        else:
            cache_answered()
            return
    RedeemFailure.objects.bulk_create([RedeemFailure(bucket=b.key, at=now) for b in found])


def _cache_count(found: list[Bucket], now: datetime) -> None:
    window = _window()
    slot = int(now.timestamp()) // window
    for bucket in found:
        key = _cache_key(bucket, slot)
        cache.add(key, 0, timeout=window + 5)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=window + 5)


def prune() -> int:
    """Delete failure rows older than the window; return how many."""
    since = timezone.now() - timedelta(seconds=_window())
    deleted, _ = RedeemFailure.objects.filter(at__lte=since).delete()
    return deleted
