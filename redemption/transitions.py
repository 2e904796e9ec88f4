"""Row-locked state changes are checked here against the transition tables in models.py."""

from redemption import exceptions as exc
from redemption.models import Move, State, sources_of

# The one map from a record's state to the error that explains why it cannot make the
# requested move (redeem adds who redeemed it: by you, or by someone else).
STATE_ERRORS: dict[str, type[exc.RedemptionError]] = {
    State.INACTIVE: exc.CodeNotActiveError,
    State.AVAILABLE: exc.CodeActiveError,
    State.IN_PROGRESS: exc.RedemptionInProgressError,
    State.REDEEMED: exc.CodeRedeemedError,
    State.INVALIDATED: exc.CodeInvalidatedError,
    State.FAILED: exc.RedemptionFailedError,
}


def can(current: str, target: str, *, shared: bool = False, move: Move | None = None) -> bool:
    """Tell whether a record in `current` may move to `target` (through `move`, if given)."""
    return current in sources_of(target, shared=shared, move=move)


def guard(current: str, target: str, *, shared: bool = False, move: Move | None = None) -> None:
    """Raise the domain error for `current` unless `current -> target` is a legal move."""
    if not can(current, target, shared=shared, move=move):
        raise STATE_ERRORS[current]()
