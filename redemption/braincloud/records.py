"""Code records in brainCloud's shape: the §3.2 fields plus `gameId`, timestamps as epoch
milliseconds, and, for a code with at least one fulfilment attempt, `currentAttempt` (0-based:
the JSON API's number minus one) and `status`, its latest attempt. Codes never attempted carry
neither.
"""

from datetime import datetime
from typing import Any

from redemption import selectors
from redemption.models import Attempt, Code, SharedRedemption, State
from redemption.records import code_record

TIMESTAMPS = ("createdAt", "activatedAt", "redeemedAt", "invalidatedAt", "updatedAt")

# An attempt's state as brainCloud names it.
ATTEMPT_STATES = {
    State.IN_PROGRESS: "IN_PROGRESS",
    State.REDEEMED: "COMPLETE",
    State.FAILED: "FAILED",
}


def epoch_ms(value: datetime | None) -> int | None:
    """Milliseconds since the Unix epoch, or None."""
    if value is None:
        return None
    return int(value.timestamp() * 1000)


def attempt_status(attempt: Attempt) -> dict[str, Any]:
    """The `status` object: one attempt, numbered from 0."""
    return {
        "attempt": attempt.attempt - 1,
        "attemptedAt": epoch_ms(attempt.started_at),
        "attemptedBy": attempt.profile_id,
        "attemptState": ATTEMPT_STATES.get(State(attempt.state), str(attempt.state).upper()),
        "response": attempt.response,
    }


def wire_record(
    record: Code | SharedRedemption, *, app_id: str, attempt: Attempt | None = None
) -> dict[str, Any]:
    """One code record on the wire; `attempt` is the record's current attempt, if it has one."""
    out = code_record(record)
    out["gameId"] = app_id
    for name in TIMESTAMPS:
        out[name] = epoch_ms(getattr(record, _FIELDS[name], None))
    current = out.pop("currentAttempt")
    if current:
        out["currentAttempt"] = current - 1
        if attempt is not None:
            out["status"] = attempt_status(attempt)
    return out


_FIELDS = {
    "createdAt": "created_at",
    "activatedAt": "activated_at",
    "redeemedAt": "redeemed_at",
    "invalidatedAt": "invalidated_at",
    "updatedAt": "updated_at",
}


def wire_records(records: list[Code | SharedRedemption], *, app_id: str) -> list[dict[str, Any]]:
    """Many records on the wire, their current attempts read in one query."""
    attempts = selectors.current_attempts(records)
    return [wire_record(r, app_id=app_id, attempt=attempts.get(r.pk)) for r in records]


def wire_record_of(record: Code | SharedRedemption, *, app_id: str) -> dict[str, Any]:
    """One record on the wire, reading its current attempt when it has one."""
    return wire_records([record], app_id=app_id)[0]
