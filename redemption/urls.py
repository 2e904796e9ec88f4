from django.urls import path, register_converter

from redemption import rules
from redemption.views import (
    audit,
    braincloud_apps,
    dashboard,
    design,
    jobs,
    keys,
    monitoring,
    staff,
    users,
)


class CodeTypeNameConverter:
    """A code type's name in a portal URL."""

    regex = rules.CODE_TYPE_NAME_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class CanonicalConverter:
    """A code's canonical scan code in a portal URL."""

    regex = rules.SCAN_CODE_CANONICAL_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CodeTypeNameConverter, "codetype")
register_converter(CanonicalConverter, "canonical")

app_name = "redemption"

DESIGN = "design/redemption-codes/"
TYPE = DESIGN + "<codetype:name>/"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    # Design › Marketplace › Redemption Codes
    path(DESIGN, design.inventory, name="inventory"),
    path(DESIGN + "new/", design.code_type_create, name="code_type_create"),
    path(TYPE, design.code_type_detail, name="code_type_detail"),
    path(TYPE + "edit/", design.code_type_edit, name="code_type_edit"),
    path(TYPE + "rotate-secret/", design.code_type_rotate_secret, name="code_type_rotate_secret"),
    path(TYPE + "reveal-secret/", design.code_type_reveal_secret, name="code_type_reveal_secret"),
    path(TYPE + "generate/", design.code_generate, name="code_generate"),
    path(TYPE + "import/", design.code_import, name="code_import"),
    path(TYPE + "add/", design.code_add, name="code_add"),
    path(TYPE + "export.csv", design.code_export, name="code_export"),
    path(
        TYPE + "batches/<uuid:batch_id>/invalidate/",
        design.batch_invalidate,
        name="batch_invalidate",
    ),
    path(TYPE + "delete-codes/", design.codes_delete, name="codes_delete"),
    path(TYPE + "reset-codes/", design.codes_reset, name="codes_reset"),
    # Global Monitoring › Redemption Codes
    path("monitoring/redemption-codes/", monitoring.lookup, name="lookup"),
    path("monitoring/redemption-codes/test-code/", monitoring.test_code, name="test_code"),
    path(
        "monitoring/redemption-codes/id/<uuid:code_id>/",
        monitoring.code_detail_by_id,
        name="code_detail_by_id",
    ),
    path(
        "monitoring/redemption-codes/<canonical:canonical>/",
        monitoring.code_detail,
        name="code_detail",
    ),
    path(
        "monitoring/redemption-codes/<canonical:canonical>/activate/",
        monitoring.code_activate,
        name="code_activate",
    ),
    path(
        "monitoring/redemption-codes/<canonical:canonical>/invalidate/",
        monitoring.code_invalidate,
        name="code_invalidate",
    ),
    path(
        "monitoring/redemption-codes/<canonical:canonical>/reset/",
        monitoring.code_reset,
        name="code_reset",
    ),
    path(
        "monitoring/redemption-codes/<canonical:canonical>/custom-info/",
        monitoring.code_custom_info,
        name="code_custom_info",
    ),
    # User Monitoring › Redemption Codes
    path("users/redemption-codes/", users.user_monitoring, name="user_monitoring"),
    path(
        "users/redemption-codes/shared/delete/",
        users.shared_redemption_delete,
        name="shared_redemption_delete",
    ),
    # Operations
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<uuid:job_id>/", jobs.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/status.json", jobs.job_status, name="job_status"),
    path("jobs/<uuid:job_id>/result.csv", jobs.job_result, name="job_result"),
    path("audit/", audit.audit_log, name="audit_log"),
    path("server-keys/", keys.server_keys, name="server_keys"),
    path("braincloud-apps/", braincloud_apps.braincloud_apps, name="braincloud_apps"),
    path("braincloud-apps/<str:app_id>/", braincloud_apps.braincloud_app, name="braincloud_app"),
    path(
        "braincloud-apps/<str:app_id>/rotate-secret/",
        braincloud_apps.braincloud_app_rotate_secret,
        name="braincloud_app_rotate_secret",
    ),
    path(
        "braincloud-apps/<str:app_id>/toggle/",
        braincloud_apps.braincloud_app_toggle,
        name="braincloud_app_toggle",
    ),
    path("server-keys/<int:key_id>/revoke/", keys.server_key_revoke, name="server_key_revoke"),
    path("staff/", staff.staff_users, name="staff_users"),
    path("staff/<int:user_id>/", staff.staff_user_detail, name="staff_user_detail"),
    path("staff/<int:user_id>/role/", staff.staff_user_role, name="staff_user_role"),
    path("staff/<int:user_id>/active/", staff.staff_user_active, name="staff_user_active"),
    path("staff/<int:user_id>/unlock/", staff.staff_user_unlock, name="staff_user_unlock"),
    path(
        "staff/<int:user_id>/second-factor/reset/",
        staff.staff_user_second_factor_reset,
        name="staff_user_second_factor_reset",
    ),
    path(
        "staff/<int:user_id>/password/reset/",
        staff.staff_user_password_reset,
        name="staff_user_password_reset",
    ),
]
