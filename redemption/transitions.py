"""Row-locked state changes are checked here against the transition tables in models.py,
and a code type's own gates (archived, disabled, validity window, cap) are decided here."""

from datetime import datetime

from redemption import exceptions as exc
from redemption.models import CodeType, Move, State, sources_of

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


def type_in_use_refusal(ct: CodeType) -> exc.RedemptionError | None:
    """Why `ct` refuses new use (redeem, add, activate, generate, import, custom-info updates):
    archived or disabled. Invalidation and resets stay allowed (a leaked code must always be
    stoppable), so they do not ask."""
    if ct.archived_at is not None:
        return exc.CodeTypeDisabledError(
            "This code type is archived; unarchive it first.",
            details={"codeType": ct.name, "archived": True},
        )
    if ct.is_disabled:
        return exc.CodeTypeDisabledError(details={"codeType": ct.name})
    return None


def redeem_refusal(
    ct: CodeType, *, now: datetime, count_cap: bool = False
) -> exc.RedemptionError | None:
    """Why no code of `ct` may be redeemed at `now`, in redeem's order of checks, or None.

    `count_cap` adds a shared type's cap as it stands (redeem itself takes a slot with a
    conditional increment instead, so concurrent callers cannot overshoot it).
    """
    refusal = type_in_use_refusal(ct)
    if refusal is not None:
        return refusal
    if ct.valid_start and now < ct.valid_start:
        return exc.NotYetValidError()
    if ct.valid_end and now >= ct.valid_end:
        return exc.ExpiredError()
    if count_cap and ct.max_redemptions is not None and ct.redemption_count >= ct.max_redemptions:
        return exc.MaxRedemptionsReachedError()
    return None
