"""Every read the portal, the API and the services use, grouped by what is read.

Querysets and select_related live here; writes live in redemption.services.
"""

from redemption.selectors.audit import (
    audit_events,
)
from redemption.selectors.batches import (
    batch_get,
    batch_open_count,
    batches_of_type,
)
from redemption.selectors.braincloud import (
    braincloud_app_get,
    braincloud_app_sessions,
    braincloud_apps,
)
from redemption.selectors.code_types import (
    CodeTypePage,
    code_type_get,
    code_types_for_choices,
    code_types_page,
    empty_counts,
    inventory_summary,
    state_counts,
    state_counts_by_type,
    totals_by_state,
)
from redemption.selectors.codes import (
    check_character_fails,
    code_attempts,
    code_by_id,
    code_for_scan_code,
    code_history,
    code_lookup,
    code_or_shared_type_lookup,
    codes_filtered,
    codes_shown_in_full,
    first_code,
    recent_failed_attempts,
)
from redemption.selectors.jobs import (
    jobs_all,
    recent_jobs,
)
from redemption.selectors.keys import (
    server_key_alive,
    server_keys,
)
from redemption.selectors.paging import (
    AnyOf,
    KeysetPage,
    cursor_decode,
    cursor_encode,
    keyset_page,
    newest_first_page,
    of_type,
)
from redemption.selectors.redemptions import (
    RecordPage,
    current_attempts,
    profile_name_of,
    profile_open_attempts,
    profile_record_counts,
    profile_records_page,
    redemptions_per_day,
)
from redemption.selectors.staff import (
    StaffRow,
    has_second_factor,
    recovery_codes_left,
    staff_user_get,
    staff_users,
)

__all__ = [
    "AnyOf",
    "CodeTypePage",
    "KeysetPage",
    "RecordPage",
    "StaffRow",
    "audit_events",
    "batch_get",
    "batch_open_count",
    "batches_of_type",
    "braincloud_app_get",
    "braincloud_app_sessions",
    "braincloud_apps",
    "check_character_fails",
    "code_attempts",
    "code_by_id",
    "code_for_scan_code",
    "code_history",
    "code_lookup",
    "code_or_shared_type_lookup",
    "code_type_get",
    "code_types_for_choices",
    "code_types_page",
    "codes_filtered",
    "codes_shown_in_full",
    "current_attempts",
    "cursor_decode",
    "cursor_encode",
    "empty_counts",
    "first_code",
    "has_second_factor",
    "inventory_summary",
    "jobs_all",
    "keyset_page",
    "newest_first_page",
    "of_type",
    "profile_name_of",
    "profile_open_attempts",
    "profile_record_counts",
    "profile_records_page",
    "recent_failed_attempts",
    "recent_jobs",
    "recovery_codes_left",
    "redemptions_per_day",
    "server_key_alive",
    "server_keys",
    "staff_user_get",
    "staff_users",
    "state_counts",
    "state_counts_by_type",
    "totals_by_state",
]
