"""Staff sign-in limits: failed tries per account (across addresses) and per client IP (across
accounts), each with its own limit, counted atomically, and the django-axes handler using them.

django-axes wires the check into Django's sign-in: its authentication backend asks the
handler `is_allowed()` before the password is checked, and Django's signals tell the handler
how the sign-in ended. Axes' own handlers check the count first and record a failure after
the password was checked, so parallel guesses all pass the check (and its cache handler loses
updates). This handler instead *takes a try* before the password is checked, with one
conditional UPDATE per counter (`db/sign_in.py`): no more than the limit get through however
many race. A right password gives its try back; a completed sign-in (after the second factor,
when the account has one) clears the account's failures. Wrong one-time codes are counted
the same way by the second sign-in step.

The counters live in the database, the one store every process shares; sign-ins are rare
enough that a row per account and per address costs nothing. A locked account or address
opens again after the cool-off (AXES_COOLOFF_TIME), or when a superuser unlocks it.
"""

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.base import AbstractAxesHandler, AxesBaseHandler
from axes.helpers import get_client_username
from axes.signals import user_locked_out
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from redemption import metrics, rules
from redemption.client_ip import client_ip
from redemption.db import sign_in
from redemption.db.sign_in import Limit

logger = logging.getLogger("redemption.sign_in")

ACCOUNT, IP = "account:", "ip:"
# The request attribute holding the counters of the try this request took.
TRY_ATTR = "sign_in_try_keys"
RETRY_ATTR = "sign_in_retry_after"


def account_key(username: str) -> str:
    """The counter of one account, whatever its spelling's case (it need not exist)."""
    return ACCOUNT + username.strip().lower()[: rules.SIGN_IN_USERNAME_COUNTED_MAX]


def ip_key(address: str) -> str:
    return IP + address


def cool_off() -> timedelta:
    value = settings.AXES_COOLOFF_TIME
    return value if isinstance(value, timedelta) else timedelta(minutes=15)


def limits_for(*, username: str, address: str) -> list[Limit]:
    return [
        Limit(account_key(username), int(settings.AXES_FAILURE_LIMIT)),
        Limit(ip_key(address), int(settings.STAFF_SIGN_IN_MAX_FAILED_PER_IP)),
    ]


def try_take(request: HttpRequest, *, username: str) -> bool:
    """Count one try of `username` from this request's client; False when either is locked.

    A request takes at most one try. A refusal leaves the seconds to wait on the request
    (`retry_after(request)`).
    """
    if getattr(request, TRY_ATTR, None) is not None:
        return True
    now = timezone.now()
    address = client_ip(request)
    limits = limits_for(username=username, address=address)
    if sign_in.tries_take(limits, now=now, since=now - cool_off()):
        setattr(request, TRY_ATTR, tuple(lim.key for lim in limits))
        return True
    setattr(request, RETRY_ATTR, _retry_after(limits, now))
    metrics.rate_limited(limit="sign_in")
    logger.warning("sign-in refused: too many failures for this account or address %s", address)
    return False


def try_succeeded(request: HttpRequest) -> None:
    """Give back the try this request took: the password or the code was right."""
    keys = getattr(request, TRY_ATTR, None)
    if keys:
        sign_in.tries_give_back(keys)
        setattr(request, TRY_ATTR, ())


def retry_after(request: HttpRequest) -> int:
    """Seconds until a refused request's client may try again."""
    return int(getattr(request, RETRY_ATTR, 0) or math.ceil(cool_off().total_seconds()))


def _retry_after(limits: list[Limit], now: datetime) -> int:
    """Seconds until the last of the locked counters opens again (at least 1)."""
    counters = sign_in.counters_read(lim.key for lim in limits)
    waits = [
        (counter.last_failure_at + cool_off() - now).total_seconds()
        for lim in limits
        if (counter := counters.get(lim.key)) is not None and counter.failures >= lim.limit
    ]
    return max(1, math.ceil(max(waits, default=1)))


def signed_in(username: str) -> None:
    """A sign-in completed: forget the account's earlier failures (not the address's)."""
    sign_in.counters_clear([account_key(username)])


def locked_accounts(usernames: list[str], *, now: datetime | None = None) -> set[str]:
    """Which of these accounts are locked now (one query)."""
    since = (now or timezone.now()) - cool_off()
    keys = {account_key(name): name for name in usernames}
    limit = int(settings.AXES_FAILURE_LIMIT)
    return {
        keys[key]
        for key, counter in sign_in.counters_read(keys).items()
        if counter.failures >= limit and counter.last_failure_at > since
    }


def account_unlock(username: str) -> bool:
    """Clear an account's failures; True if it had any."""
    return sign_in.counters_clear([account_key(username)]) > 0


def address_unlock(address: str) -> bool:
    """Clear a client address's failures; True if it had any."""
    return sign_in.counters_clear([ip_key(address)]) > 0


def prune(*, now: datetime | None = None) -> int:
    """Delete counters quiet for longer than the cool-off (they count nothing any more)."""
    return sign_in.counters_prune(before=(now or timezone.now()) - cool_off())


class SignInLimitHandler(AbstractAxesHandler, AxesBaseHandler):
    """django-axes handler (AXES_HANDLER) backed by the atomic counters above."""

    def is_allowed(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if self.is_blacklisted(request, credentials):
            return False
        if self.is_whitelisted(request, credentials):
            return True
        return try_take(request, username=get_client_username(request, credentials) or "")

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        now = timezone.now()
        username = get_client_username(request, credentials) or ""
        limits = limits_for(username=username, address=client_ip(request))
        counters = sign_in.counters_read(lim.key for lim in limits)
        return any(
            (c := counters.get(lim.key)) is not None
            and c.failures >= lim.limit
            and c.last_failure_at > now - cool_off()
            for lim in limits
        )

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        since = timezone.now() - cool_off()
        username = get_client_username(request, credentials) or ""
        limits = limits_for(username=username, address=client_ip(request))
        counters = sign_in.counters_read(lim.key for lim in limits).values()
        return max((c.failures for c in counters if c.last_failure_at > since), default=0)

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        if request is None:
            return
        if getattr(request, TRY_ATTR, None) is None:
            # Refused before the password was looked at: show the "sign-in paused" page.
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=get_client_username(request, credentials),
                ip_address=client_ip(request),
            )
        # Otherwise the try taken in is_allowed() stays counted: it was the failure.

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        if request is not None:
            try_succeeded(request)
        if settings.AXES_RESET_ON_SUCCESS:
            signed_in(user.get_username())

    def user_logged_out(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        return None

    def reset_attempts(
        self,
        *,
        ip_address: str | None = None,
        username: str | None = None,
        ip_or_username: bool = False,
    ) -> int:
        """What `manage.py axes_reset*` calls: clear the named counters (all without names)."""
        keys = [account_key(username)] if username else []
        keys += [ip_key(ip_address)] if ip_address else []
        if not keys:
            return sign_in.counters_clear_prefixed("")
        return sign_in.counters_clear(keys)
