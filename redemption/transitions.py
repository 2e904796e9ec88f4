"""The one place a state change is checked against the TRANSITIONS table."""

from redemption import exceptions as exc
from redemption.models import SHARED_TRANSITIONS, TRANSITIONS, State

# The error that explains why a code in a given state cannot make the requested move.
STATE_ERRORS: dict[str, type[exc.RedemptionError]] = {
    State.INACTIVE: exc.CodeNotActiveError,
    State.AVAILABLE: exc.CodeActiveError,
    State.IN_PROGRESS: exc.RedemptionInProgressError,
    State.REDEEMED: exc.CodeRedeemedError,
    State.INVALIDATED: exc.CodeInvalidatedError,
    State.FAILED: exc.RedemptionFailedError,
}


def guard(current: str, target: str, *, shared: bool = False) -> None:
    """Raise the domain error for `current` unless `current -> target` is a legal move."""
    table = SHARED_TRANSITIONS if shared else TRANSITIONS
    if State(target) not in table.get(State(current), frozenset()):
        raise STATE_ERRORS[current]()


def can(current: str, target: str, *, shared: bool = False) -> bool:
    table = SHARED_TRANSITIONS if shared else TRANSITIONS
    return State(target) in table.get(State(current), frozenset())
