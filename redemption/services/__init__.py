"""Every write goes through these functions (views, API, tasks and commands only translate)."""

from redemption.services.code_types import (
    code_type_create,
    code_type_rotate_secret,
    code_type_update,
    shared_redemption_delete,
)
from redemption.services.redeem import (
    RedeemResult,
    apply_reply,
    expire_if_due,
    process_async_response,
    redeem,
    sweep_timeouts,
)
from redemption.services.single import (
    batch_invalidate,
    code_activate,
    code_add,
    code_invalidate,
    code_reset,
    code_update_custom_info,
)

__all__ = [
    "RedeemResult",
    "apply_reply",
    "batch_invalidate",
    "code_activate",
    "code_add",
    "code_invalidate",
    "code_reset",
    "code_type_create",
    "code_type_rotate_secret",
    "code_type_update",
    "code_update_custom_info",
    "expire_if_due",
    "process_async_response",
    "redeem",
    "shared_redemption_delete",
    "sweep_timeouts",
]
