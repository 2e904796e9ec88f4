"""Every write goes through these functions (views, API, tasks and commands only translate)."""

from redemption.services.bulk import (
    codes_generate_inline,
    delete_reset_preview,
    export_rows,
    job_delete_codes_start,
    job_generate_start,
    job_get,
    job_import_start,
    job_reset_codes_start,
    job_result_rows,
    run_job,
)
from redemption.services.code_types import (
    code_type_archive,
    code_type_create,
    code_type_delete,
    code_type_rotate_secret,
    code_type_secret_reveal,
    code_type_update,
    shared_redemption_delete,
)
from redemption.services.fulfilment_replies import apply_reply, process_async_response
from redemption.services.keys import (
    UserToken,
    server_key_authenticate,
    server_key_create,
    server_key_find,
    server_key_revoke,
    user_token_mint,
    user_token_verify,
)
from redemption.services.redeem import RedeemResult, redeem
from redemption.services.single import (
    batch_invalidate,
    code_activate,
    code_add,
    code_invalidate,
    code_reset,
    code_update_custom_info,
)
from redemption.services.timeouts import expire_if_due, sweep_timeouts

__all__ = [
    "RedeemResult",
    "UserToken",
    "apply_reply",
    "batch_invalidate",
    "code_activate",
    "code_add",
    "code_invalidate",
    "code_reset",
    "code_type_archive",
    "code_type_create",
    "code_type_delete",
    "code_type_rotate_secret",
    "code_type_secret_reveal",
    "code_type_update",
    "code_update_custom_info",
    "codes_generate_inline",
    "delete_reset_preview",
    "expire_if_due",
    "export_rows",
    "job_delete_codes_start",
    "job_generate_start",
    "job_get",
    "job_import_start",
    "job_reset_codes_start",
    "job_result_rows",
    "process_async_response",
    "redeem",
    "run_job",
    "server_key_authenticate",
    "server_key_create",
    "server_key_find",
    "server_key_revoke",
    "shared_redemption_delete",
    "sweep_timeouts",
    "user_token_mint",
    "user_token_verify",
]
