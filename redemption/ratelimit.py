"""Failed-redeem counting per profile and per client IP, in a store every process shares.

The database is the default store; with CACHE_URL set (Redis) the cache is used instead.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import RedeemFailure


@dataclass(frozen=True)
class Bucket:
    key: str
    limit: int


def buckets(*, profile_id: str, client_ip: str | None) -> list[Bucket]:
    """The counters a redeem by this profile (and, for user-token calls, this IP) touches."""
    found = [Bucket(f"profile:{profile_id}", settings.REDEEM_MAX_FAILED_PER_PROFILE)]
    if client_ip:
        found.append(Bucket(f"ip:{client_ip}", settings.REDEEM_MAX_FAILED_PER_IP))
    return found


def _use_cache() -> bool:
    return bool(settings.CACHE_URL)


def _window() -> int:
    return settings.REDEEM_FAILED_WINDOW_SECONDS


def check(found: list[Bucket]) -> None:
    """Raise MAX_FAILED_EXCEEDED with a retry delay when any bucket is at its limit."""
    for bucket in found:
        retry_after = _retry_after(bucket)
        if retry_after is not None:
            raise exc.MaxFailedExceeded(details={"retryAfterSeconds": retry_after})


def _retry_after(bucket: Bucket) -> int | None:
    now = timezone.now()
    window = _window()
    if _use_cache():
        slot = int(now.timestamp()) // window
        count = cache.get(f"redeemfail:{bucket.key}:{slot}", 0)
        if count >= bucket.limit:
            return max(1, (slot + 1) * window - int(now.timestamp()))
        return None
    since = now - timedelta(seconds=window)
    recent = list(
        RedeemFailure.objects.filter(bucket=bucket.key, at__gt=since)
        .order_by("-at")
        .values_list("at", flat=True)[: bucket.limit]
    )
    if len(recent) < bucket.limit:
        return None
    oldest_counted = recent[-1]
    return max(1, math.ceil((oldest_counted + timedelta(seconds=window) - now).total_seconds()))


def record_failure(found: list[Bucket]) -> None:
    """Count one failed redeem in every bucket (committed on its own, outside the redeem)."""
    now = timezone.now()
    if _use_cache():
        window = _window()
        slot = int(now.timestamp()) // window
        for bucket in found:
            key = f"redeemfail:{bucket.key}:{slot}"
            cache.add(key, 0, timeout=window + 5)
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout=window + 5)
        return
    RedeemFailure.objects.bulk_create([RedeemFailure(bucket=b.key, at=now) for b in found])


def prune() -> int:
    """Delete failure rows older than the window; return how many."""
    since = timezone.now() - timedelta(seconds=_window())
    deleted, _ = RedeemFailure.objects.filter(at__lte=since).delete()
    return deleted
