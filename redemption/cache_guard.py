"""The cache server (Redis) as a shared counter store, with the database standing behind it.

With CACHE_URL set, the failed-redeem and sign-in counters live in the cache. When the cache
server cannot be reached, the callers fall back to the database store for a short while
(`RETRY_SECONDS`) and then try the cache again, so a redeem keeps working through a cache
outage and does not wait for a timeout on every request. The outage is logged once per
CACHE_OUTAGE_LOG_SECONDS per process, and its end once.
"""

import logging
import threading
import time

from django.conf import settings
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

logger = logging.getLogger("redemption.cache")

# What a cache call raises when the cache server is down or unreachable.
CACHE_DOWN = (ConnectionInterrupted, RedisError, OSError)
# After a failure the cache is left alone this long before it is tried again.
RETRY_SECONDS = 5.0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0  # monotonic time before which the cache is not tried
        self.down_since: float | None = None
        self.logged_at: float | None = None


_state = _State()


def cache_in_use() -> bool:
    """Whether counters should go to the cache now (configured, and not known to be down)."""
    return bool(settings.CACHE_URL) and time.monotonic() >= _state.down_until


def cache_failed(error: BaseException) -> None:
    """Note that the cache server did not answer; log it once per interval."""
    now = time.monotonic()
    with _state.lock:
        _state.down_until = now + RETRY_SECONDS
        if _state.down_since is None:
            _state.down_since = now
        interval = max(1, settings.CACHE_OUTAGE_LOG_SECONDS)
        if _state.logged_at is not None and now - _state.logged_at < interval:
            return
        _state.logged_at = now
    logger.error(
        "cache server unreachable (%s); rate limits use the database until it answers again",
        error,
    )


def cache_answered() -> None:
    """Note that the cache server answered; log the end of an outage once."""
    if _state.down_since is None:
        return
    with _state.lock:
        since, _state.down_since, _state.logged_at = _state.down_since, None, None
    if since is not None:
        logger.warning(
            "cache server answers again after %.0f s; rate limits use it again",
            time.monotonic() - since,
        )


def cache_reset() -> None:
    """Forget any outage (tests)."""
    with _state.lock:
        _state.down_until, _state.down_since, _state.logged_at = 0.0, None, None
