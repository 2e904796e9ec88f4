"""Idempotency-Key on POST: replay the first response, refuse reuse and overlap.

A key is scoped to one credential ("server_key:<id>" or "profile:<profileId>"). The first
request marks the key in flight in its own short transaction, so a concurrent retry sees it
and gets 409; the response is stored in the same transaction as the work where the work
allows one (everything but redeem, whose webhook call must run outside a transaction, and
the CSV import, whose upload is too long to hold a write transaction open).
"""

import contextlib
import hashlib
import io
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone

from redemption import exceptions as exc
from redemption import rules
from redemption.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_RE = re.compile(rules.IDEMPOTENCY_KEY_REGEX)
# An in-flight mark this old belongs to a request that died (a killed worker, a database
# outage that kept the mark from being released); a retry may take it over. Requests finish
# well within it: a webhook call is cut off after at most 10 s.
ABANDONED_AFTER = timedelta(seconds=30)
STORED_HEADERS = ("Content-Type", "Location")
# Transient outcomes are not remembered: a retry should really try again.
NOT_STORED = frozenset({429, 500, 503})


def check_key(value: str) -> str:
    """Return the key, or raise INVALID_PARAMETER_VALUE naming the header."""
    if not KEY_RE.fullmatch(value):
        raise exc.invalid_fields({HEADER: rules.IDEMPOTENCY_KEY_RULE})
    return value


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of what makes two requests 'the same request'."""
    digest = hashlib.sha256(f"{method}\n{path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class HashingReader(io.RawIOBase):
    """A read-once view of a request body that hashes what passes and enforces a size cap."""

    def __init__(self, source: Any, *, method: str, path: str, limit: int) -> None:
        self._source = source
        self._limit = limit
        self._seen = 0
        self._done = False
        self._digest = hashlib.sha256(f"{method}\n{path}\n".encode())

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        data = self._source.read(len(buffer))
        if not data:
            self._done = True
            return 0
        self._seen += len(data)
        if self._seen > self._limit:
            raise exc.RequestTooLargeError()
        self._digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def hexdigest(self) -> str:
        """Read whatever the consumer left unread, then return the hash of the whole body."""
        while self.read(1 << 20):
            pass
        return self._digest.hexdigest()


def _replay(record: IdempotencyRecord) -> HttpResponse:
    headers = dict(record.response_headers or {})
    content_type = headers.pop("Content-Type", "application/json")
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.status_code or 200,
        content_type=content_type,
    )
    for name, value in headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def _claim(
    *, credential: str, key: str, hash_now: str | None, hash_later: Callable[[], str]
) -> IdempotencyRecord | HttpResponse:
    """Mark the key in flight and return the mark, or answer from what is stored."""
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    credential=credential, key=key, request_hash=hash_now or "", created_at=now
                )
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(credential=credential, key=key).first()
        if existing is None:
            continue  # the first request failed and released the key a moment ago
        if existing.status_code is None:
            if hash_now and existing.request_hash and existing.request_hash != hash_now:
                raise exc.IdempotencyKeyReusedError()
            if existing.created_at < now - ABANDONED_AFTER and _take_over(existing, now):
                existing.created_at = now
                return existing
            raise _in_use(existing.created_at + ABANDONED_AFTER - now)
        if (hash_now or hash_later()) != existing.request_hash:
            raise exc.IdempotencyKeyReusedError()
        return _replay(existing)
    raise _in_use(ABANDONED_AFTER)


def _in_use(wait: timedelta) -> exc.IdempotencyKeyInUseError:
    """IN_USE, telling the client when to retry: when the first request must have ended."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    return exc.IdempotencyKeyInUseError(details={"retryAfterSeconds": seconds})


def _take_over(record: IdempotencyRecord, now: datetime) -> bool:
    return bool(
        IdempotencyRecord.objects.filter(
            pk=record.pk, status_code__isnull=True, created_at=record.created_at
        ).update(created_at=now)
    )


def _mine(record: IdempotencyRecord) -> QuerySet[IdempotencyRecord]:
    """The in-flight mark, if this request still holds it (a retry may have taken it over)."""
    return IdempotencyRecord.objects.filter(
        pk=record.pk, status_code__isnull=True, created_at=record.created_at
    )


def _store(record: IdempotencyRecord, response: HttpResponse, request_hash: str) -> bool:
    """Store the answer on the mark; False when a retry took the mark over meanwhile."""
    return bool(
        _mine(record).update(
            request_hash=request_hash,
            status_code=response.status_code,
            response_body=response.content,
            response_headers={h: response[h] for h in STORED_HEADERS if response.has_header(h)},
            completed_at=timezone.now(),
        )
    )


def _release(record: IdempotencyRecord) -> None:
    _mine(record).delete()


def run(
    *,
    credential: str,
    key: str,
    work: Callable[[], HttpResponse],
    hash_now: str | None,
    hash_later: Callable[[], str] | None = None,
    atomic: bool = True,
) -> HttpResponse:
    """Run `work` at most once per (credential, key) and remember its response.

    `work` returns a response (domain errors already turned into error responses) or raises
    for the unexpected. `hash_now` is the request fingerprint when known up front; otherwise
    `hash_later` computes it from the body `work` consumed (and reads any rest).
    """
    later = hash_later or (lambda: hash_now or "")
    claimed = _claim(credential=credential, key=key, hash_now=hash_now, hash_later=later)
    if isinstance(claimed, HttpResponse):
        return claimed
    try:
        if atomic:
            with transaction.atomic():
                response = work()
                if response.status_code not in NOT_STORED and not _store(
                    claimed, response, later()
                ):
                    # A retry took the mark over: its answer counts, so this work is undone.
                    raise _in_use(ABANDONED_AFTER)
        else:
            response = work()
            if response.status_code not in NOT_STORED:
                _store(claimed, response, later())
    except BaseException:
        # The original error is what matters; if even this fails, the mark ages out.
        with contextlib.suppress(Exception):
            _release(claimed)
        raise
    if response.status_code in NOT_STORED:
        _release(claimed)
    return response
