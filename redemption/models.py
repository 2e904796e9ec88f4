"""Redemption domain: code types, codes, shared redemptions, attempts, batches, jobs, audit."""

import uuid
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from redemption import rules
from redemption.ids import uuid7


class State(models.TextChoices):
    INACTIVE = "Inactive"
    AVAILABLE = "Available"
    IN_PROGRESS = "InProgress"
    REDEEMED = "Redeemed"
    INVALIDATED = "Invalidated"
    FAILED = "Failed"


STATE_ORDER: tuple[str, ...] = tuple(s.value for s in State)
INITIAL_STATES = frozenset({State.INACTIVE, State.AVAILABLE})


class Move(StrEnum):
    """What moves a record from one state to another: the labels on the state diagram."""

    ACTIVATE = "activate"
    INVALIDATE = "invalidate"
    REDEEM = "redeem"  # no fulfilment configured: redeemed at once
    ATTEMPT = "attempt"  # fulfilment configured: the first attempt starts
    RETRY = "retry"  # redeem again by the profile whose attempt failed, while attempts are left
    SUCCEED = "succeed"  # the fulfilment replied success and complete
    FAIL = "fail"  # the fulfilment failed, or its attempt ran past its window
    RESET = "reset"  # staff put a personal code back to the start (one code, or a whole type)


# The state diagram of a personal code, one (from, move, to) row per arrow. Creation (add,
# generate, import) starts a code in one of INITIAL_STATES; every later change of a code's
# state is one of these rows or a staff reset (RESETS). redemption.transitions.guard() checks
# row-locked changes against them; every conditional UPDATE in redemption.db.claims takes its
# allowed source states from sources_of().
PERSONAL_MOVES: tuple[tuple[State, Move, State], ...] = (
    (State.INACTIVE, Move.ACTIVATE, State.AVAILABLE),
    (State.INACTIVE, Move.INVALIDATE, State.INVALIDATED),
    (State.AVAILABLE, Move.INVALIDATE, State.INVALIDATED),
    (State.FAILED, Move.INVALIDATE, State.INVALIDATED),
    (State.AVAILABLE, Move.REDEEM, State.REDEEMED),
    (State.AVAILABLE, Move.ATTEMPT, State.IN_PROGRESS),
    (State.IN_PROGRESS, Move.SUCCEED, State.REDEEMED),
    (State.IN_PROGRESS, Move.FAIL, State.FAILED),
    (State.FAILED, Move.RETRY, State.IN_PROGRESS),
)
# A shared code type's per-profile redemption records are created InProgress (fulfilment) or
# Redeemed (none), then only move through the fulfilment states.
SHARED_MOVES: tuple[tuple[State, Move, State], ...] = (
    (State.IN_PROGRESS, Move.SUCCEED, State.REDEEMED),
    (State.IN_PROGRESS, Move.FAIL, State.FAILED),
    (State.FAILED, Move.RETRY, State.IN_PROGRESS),
)
# Staff reset is outside the lifecycle: a personal code in any state goes back to a start state.
RESETS: tuple[tuple[State, Move, State], ...] = tuple(
    (source, Move.RESET, target) for source in State for target in INITIAL_STATES
)


def _by_source(moves: tuple[tuple[State, Move, State], ...]) -> dict[State, frozenset[State]]:
    return {s: frozenset(t for f, _, t in moves if f == s) for s in {f for f, _, _ in moves}}


# The same diagrams as {from: targets}, for "may this record go there?" questions.
TRANSITIONS: dict[State, frozenset[State]] = {
    **dict.fromkeys(State, frozenset()),
    **_by_source(PERSONAL_MOVES),
}
SHARED_TRANSITIONS: dict[State, frozenset[State]] = {
    **dict.fromkeys((State.IN_PROGRESS, State.REDEEMED, State.FAILED), frozenset()),
    **_by_source(SHARED_MOVES),
}


def _moves(*, shared: bool, move: Move | None) -> tuple[tuple[State, Move, State], ...]:
    if move == Move.RESET:
        return () if shared else RESETS
    return SHARED_MOVES if shared else PERSONAL_MOVES


def sources_of(target: str, *, shared: bool = False, move: Move | None = None) -> frozenset[State]:
    """The states a record may leave for `target` (through `move` only, when given).

    Staff resets count only when asked for (`move=Move.RESET`): they are not part of the
    lifecycle, and "may this code become Available?" must not answer yes for a redeemed one.
    """
    return _SOURCES[(State(target), shared, move)]


def targets_of(source: str, *, shared: bool = False) -> frozenset[State]:
    """The states a record in `source` may move to (staff resets aside)."""
    return (SHARED_TRANSITIONS if shared else TRANSITIONS).get(State(source), frozenset())


# Precomputed: sources_of() is asked on every redeem.
_SOURCES: dict[tuple[State, bool, Move | None], frozenset[State]] = {
    (target, shared, move): frozenset(
        f for f, m, t in _moves(shared=shared, move=move) if t == target and move in (None, m)
    )
    for target in State
    for shared in (False, True)
    for move in (None, *Move)
}


# A shared code type's cap (maxRedemptions) counts these records; a Failed attempt gives its
# slot back.
SLOT_STATES = frozenset({State.REDEEMED, State.IN_PROGRESS})


class UseType(models.TextChoices):
    SINGLE = "SINGLE", "Personal (single use)"
    MULTI = "MULTI", "Shared (multi use)"


class CodeType(models.Model):
    """A campaign: a named group of codes with shared settings."""

    name = models.CharField(max_length=rules.CODE_TYPE_NAME_MAX, unique=True, db_collation=None)
    description = models.TextField(blank=True, default="")
    use_type = models.CharField(max_length=6, choices=UseType.choices, default=UseType.SINGLE)
    scan_code = models.CharField(max_length=rules.SCAN_CODE_WRITTEN_MAX, null=True, blank=True)
    canonical_scan_code = models.CharField(
        max_length=rules.SCAN_CODE_MAX, null=True, blank=True, unique=True
    )
    valid_start = models.DateTimeField(null=True, blank=True)
    valid_end = models.DateTimeField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    redemption_count = models.PositiveIntegerField(default=0)
    custom_code_info = models.JSONField(default=dict, blank=True)
    is_disabled = models.BooleanField(default=False)
    # Archived: hidden from the inventory and the code-type list by default, codes kept, not
    # redeemable (REDEMPTION_CODE_TYPE_DISABLED); unarchiving brings it back as it was.
    archived_at = models.DateTimeField(null=True, blank=True)
    fulfillment_url = models.URLField(max_length=rules.WEBHOOK_URL_MAX, blank=True, default="")
    fulfillment_async = models.BooleanField(default=False)
    fulfillment_max_retries = models.PositiveSmallIntegerField(
        default=rules.WEBHOOK_RETRIES_DEFAULT
    )
    fulfillment_timeout_seconds = models.PositiveIntegerField(default=rules.WEBHOOK_TIMEOUT_DEFAULT)
    # Needed in clear to sign webhook bodies; shown to ops, never logged.
    webhook_secret = models.CharField(max_length=128, blank=True, default="")
    # After a rotation the old secret also signs calls until this time (a grace period).
    previous_webhook_secret = models.CharField(max_length=128, blank=True, default="")
    previous_secret_valid_until = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(use_type="SINGLE", canonical_scan_code__isnull=True)
                | Q(use_type="MULTI", canonical_scan_code__isnull=False),
                name="codetype_scan_code_only_for_multi",
            ),
            models.CheckConstraint(
                condition=Q(valid_start__isnull=True)
                | Q(valid_end__isnull=True)
                | Q(valid_end__gt=models.F("valid_start")),
                name="codetype_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(redemption_count__lte=models.F("max_redemptions")),
                name="codetype_redemptions_within_cap",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.use_type == UseType.MULTI

    @property
    def has_fulfillment(self) -> bool:
        return bool(self.fulfillment_url)

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def previous_secrets(self, now: datetime) -> tuple[str, ...]:
        """The rotated-out webhook secret while its grace period lasts (it signs calls too)."""
        until = self.previous_secret_valid_until
        if self.previous_webhook_secret and until is not None and now < until:
            return (self.previous_webhook_secret,)
        return ()


class Batch(models.Model):
    """One generation or import run: the unit that can be exported or invalidated together."""

    class Kind(models.TextChoices):
        GENERATE = "generate"
        IMPORT = "import"
        ADD = "add"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code_type = models.ForeignKey(CodeType, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    algorithm = models.CharField(max_length=32, blank=True, default="")
    prefix = models.CharField(max_length=rules.PREFIX_WRITTEN_MAX, blank=True, default="")
    length = models.PositiveSmallIntegerField(null=True, blank=True)
    include_check = models.BooleanField(default=False)
    quantity = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    invalidated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class Code(models.Model):
    """A personal code, or the namespace anchor that reserves a shared code type's scan code."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # The composite indexes below lead with these columns, so no single-column index is needed.
    # On PostgreSQL, code_type and batch are checked per statement by triggers instead of
    # foreign keys (db/parent_checks.py, migration 0016): bulk inserts check each parent once.
    code_type = models.ForeignKey(
        CodeType, on_delete=models.CASCADE, related_name="codes", db_index=False
    )
    is_shared_anchor = models.BooleanField(default=False)
    scan_code = models.CharField(max_length=rules.SCAN_CODE_WRITTEN_MAX)
    # Unique through Meta.constraints, not unique=True: that would add a second, pattern-ops
    # index on PostgreSQL. Migration 0006 gives the column the "C" collation there, so the one
    # unique index serves equality, ON CONFLICT and prefix (LIKE 'AB%') searches alike.
    canonical = models.CharField(max_length=rules.SCAN_CODE_MAX)
    state = models.CharField(max_length=12, choices=State.choices, default=State.INACTIVE)
    version = models.PositiveIntegerField(default=1)
    custom_code_info = models.JSONField(default=dict, blank=True)
    custom_redemption_info = models.JSONField(default=dict, blank=True)
    redeemed_by_profile_id = models.CharField(
        max_length=rules.PROFILE_ID_MAX, null=True, blank=True
    )
    redeemed_by_profile_name = models.CharField(
        max_length=rules.PROFILE_NAME_MAX, null=True, blank=True
    )
    invalidation_reason = models.TextField(null=True, blank=True)
    batch = models.ForeignKey(
        Batch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="codes",
        db_index=False,
    )
    current_attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["code_type", "state", "id"], name="code_type_state_id"),
            models.Index(fields=["code_type", "id"], name="code_type_id"),
            models.Index(fields=["batch", "id"], name="code_batch_id"),
            # One profile's codes newest first, a keyset page at a time (selectors.redemptions).
            models.Index(
                F("redeemed_by_profile_id"),
                Coalesce("redeemed_at", "updated_at"),
                F("id"),
                name="code_profile_recent",
                condition=Q(redeemed_by_profile_id__isnull=False),
            ),
            models.Index(
                fields=["redeemed_at"],
                name="code_redeemed_at",
                condition=Q(redeemed_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["canonical"], name="code_canonical_unique"),
            models.CheckConstraint(
                condition=~Q(state="Redeemed")
                | (Q(redeemed_by_profile_id__isnull=False) & Q(redeemed_at__isnull=False)),
                name="code_redeemed_has_redeemer_and_time",
            ),
            models.CheckConstraint(condition=Q(state__in=STATE_ORDER), name="code_state_valid"),
        ]

    def __str__(self) -> str:
        return self.scan_code


class SharedRedemption(models.Model):
    """One profile's redemption of a shared code type."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    code_type = models.ForeignKey(
        CodeType, on_delete=models.CASCADE, related_name="shared_redemptions", db_index=False
    )
    profile_id = models.CharField(max_length=rules.PROFILE_ID_MAX)
    profile_name = models.CharField(max_length=rules.PROFILE_NAME_MAX, null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices)
    version = models.PositiveIntegerField(default=1)
    custom_code_info = models.JSONField(default=dict, blank=True)
    custom_redemption_info = models.JSONField(default=dict, blank=True)
    current_attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                F("profile_id"),
                Coalesce("redeemed_at", "updated_at"),
                F("id"),
                name="shared_profile_recent",
            ),
            models.Index(fields=["code_type", "state", "id"], name="shared_type_state_id"),
            models.Index(fields=["code_type", "id"], name="shared_type_id"),
            models.Index(fields=["redeemed_at"], name="shared_redeemed_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["code_type", "profile_id"], name="shared_one_per_profile"
            ),
            models.CheckConstraint(
                condition=~Q(state="Redeemed") | Q(redeemed_at__isnull=False),
                name="shared_redeemed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["InProgress", "Redeemed", "Failed"]),
                name="shared_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code_type_id}:{self.profile_id}"


class Attempt(models.Model):
    """One fulfilment attempt of a personal code or of a shared redemption."""

    code = models.ForeignKey(
        Code, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    shared = models.ForeignKey(
        SharedRedemption, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    attempt = models.PositiveIntegerField()
    profile_id = models.CharField(max_length=rules.PROFILE_ID_MAX)
    profile_name = models.CharField(max_length=rules.PROFILE_NAME_MAX, null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_PROGRESS)
    started_at = models.DateTimeField()
    deadline_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=100, null=True, blank=True)
    error_msg = models.TextField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["attempt"]
        indexes = [models.Index(fields=["state", "deadline_at"], name="attempt_state_deadline")]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__isnull=False, shared__isnull=True)
                | Q(code__isnull=True, shared__isnull=False),
                name="attempt_one_owner",
            ),
            models.UniqueConstraint(fields=["code", "attempt"], name="attempt_code_unique"),
            models.UniqueConstraint(fields=["shared", "attempt"], name="attempt_shared_unique"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.attempt} ({self.state})"


class Job(models.Model):
    """A background job with progress: generate, import, export, delete-all, reset-all."""

    class Kind(models.TextChoices):
        GENERATE = "generate"
        IMPORT = "import"
        EXPORT = "export"
        DELETE_CODES = "delete_codes"
        RESET_CODES = "reset_codes"
        INVALIDATE_BATCH = "invalidate_batch"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    code_type = models.ForeignKey(
        CodeType, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    code_type_name = models.CharField(max_length=rules.CODE_TYPE_NAME_MAX, blank=True, default="")
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveBigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    upload = models.CharField(max_length=300, blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The lease: the worker ("host:pid") running the job holds it until lease_expires_at and
    # renews it with every committed batch. `attempts` counts the holders so far; `holders`
    # lists them ({"attempt", "worker", "at", "resumedFrom"}), newest last.
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    holders = models.JSONField(default=list, blank=True)
    # Where a job that is taken over resumes, for kinds whose progress is not in the fields
    # above (delete/reset: the last key done and the counts per state).
    checkpoint = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="job_created"),
            # What a worker polls for: queued jobs, and running ones whose lease ran out.
            models.Index(
                fields=["status", "lease_expires_at"],
                name="job_live",
                condition=Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return min(100, int(self.done * 100 / self.total))

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


# The audit events that record a redemption: redeemed at once (no fulfilment), or a
# fulfilment reply whose details say it redeemed. The dashboard counts them per day.
REDEEMED_AT_ONCE = ("code.redeem", "shared.redeem")
FULFILMENT_REPLIES = ("code.fulfilment", "shared.fulfilment")
REDEMPTION_EVENT = Q(action__in=REDEEMED_AT_ONCE) | Q(
    action__in=FULFILMENT_REPLIES, details__state=State.REDEEMED.value
)


class AuditEvent(models.Model):
    """Append-only record of who changed what."""

    at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=128, blank=True, default="")
    actor_label = models.CharField(max_length=200, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    code_type_name = models.CharField(
        max_length=rules.CODE_TYPE_NAME_MAX, blank=True, default="", db_index=True
    )
    target_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    scan_code = models.CharField(max_length=rules.SCAN_CODE_WRITTEN_MAX, blank=True, default="")
    profile_id = models.CharField(
        max_length=rules.PROFILE_ID_MAX, blank=True, default="", db_index=True
    )
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # Redemptions per day, of every type or of one (selectors.redemptions).
            models.Index(
                fields=["at", "code_type_name"],
                name="audit_redemption_at",
                condition=REDEMPTION_EVENT,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"


class ServerKey(models.Model):
    """Credential of a backend calling the server API; only a hash of the secret is kept."""

    name = models.CharField(max_length=rules.SERVER_KEY_NAME_MAX)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # What the key may call (rules.SERVER_KEY_SCOPES), and when it stops working (if ever).
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.has_expired(timezone.now())

    def has_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class IdempotencyRecord(models.Model):
    """The first response to an Idempotency-Key, replayed for retries of the same request."""

    credential = models.CharField(max_length=160)
    key = models.CharField(max_length=rules.IDEMPOTENCY_KEY_MAX)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["credential", "key"], name="idempotency_unique")
        ]

    def __str__(self) -> str:
        return self.key


class PeriodicRun(models.Model):
    """Who runs a piece of periodic work in the current time slot: one worker wins each slot."""

    name = models.CharField(max_length=64, primary_key=True)
    slot = models.BigIntegerField(default=0)  # seconds since the epoch // the interval
    runner = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.name} (slot {self.slot}, {self.runner})"


class RedeemFailure(models.Model):
    """One failed redeem, counted per profile and per client IP for rate limiting."""

    bucket = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["bucket", "at"], name="redeem_failure_bucket_at")]

    def __str__(self) -> str:
        return self.bucket


class StateCountDelta(models.Model):
    """PostgreSQL only: per-type, per-state count changes written by triggers on codes and
    shared redemptions, so inventory counts never scan millions of rows. The sweep folds the
    rows into one per (type, state); the counts are SUM(delta)."""

    code_type_id = models.BigIntegerField()
    state = models.CharField(max_length=12)
    delta = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["code_type_id", "state"], name="statecount_type_state")]

    def __str__(self) -> str:
        return f"{self.code_type_id}:{self.state}:{self.delta:+d}"


class SignInCounter(models.Model):
    """Failed staff sign-ins of one account (across addresses) or one client IP (across
    accounts), for the sign-in limits. A try is counted before the password is checked, by a
    conditional UPDATE, so parallel guesses cannot pass the limit (redemption.sign_in_limits).
    """

    key = models.CharField(max_length=rules.SIGN_IN_COUNTER_KEY_MAX, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: {self.failures}"


class BraincloudApp(models.Model):
    """A brainCloud app whose unchanged official clients call /dispatcherv2 (SPEC §11).

    The secret is kept in clear: every packet's X-SIG is an MD5 over the body and the secret.
    """

    app_id = models.CharField(max_length=rules.WIRE_APP_ID_MAX, unique=True)
    name = models.CharField(max_length=rules.WIRE_APP_NAME_MAX, blank=True, default="")
    secret = models.CharField(max_length=rules.WIRE_APP_SECRET_MAX)
    allow_anonymous = models.BooleanField(default=False)
    session_seconds = models.PositiveIntegerField(default=rules.WIRE_SESSION_SECONDS_DEFAULT)
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["app_id"]

    def __str__(self) -> str:
        return self.app_id

    @property
    def auth_types(self) -> tuple[str, ...]:
        """The client authentication types this app accepts."""
        return ("External", "Anonymous") if self.allow_anonymous else ("External",)


class ResendSlot(models.Model):
    """The resend slot of a wire session (braincloud.packets): a packet whose id equals the
    last one gets the stored answer, byte for byte, and nothing is run again."""

    last_packet_id = models.BigIntegerField(null=True, blank=True)
    last_response = models.TextField(null=True, blank=True)  # the JSON text, byte for byte
    last_packet_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class WireSession(ResendSlot):
    """A signed-in brainCloud client, shared by every process; each packet slides its expiry.

    Only a hash of the session id is kept.
    """

    key_hash = models.CharField(max_length=64, primary_key=True)
    app = models.ForeignKey(BraincloudApp, on_delete=models.CASCADE, related_name="sessions")
    profile_id = models.CharField(max_length=rules.PROFILE_ID_MAX)
    profile_name = models.CharField(max_length=rules.PROFILE_NAME_MAX, null=True, blank=True)
    client_ip = models.CharField(max_length=100, blank=True, default="")
    # The server key that minted the External sign-in's user token: revoking it ends redeems.
    minting_key_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    logged_out = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.app_id}:{self.profile_id}"


class WireAnonymousProfile(models.Model):
    """The stable profile an app's anonymous id signs in as."""

    app = models.ForeignKey(BraincloudApp, on_delete=models.CASCADE, related_name="anonymous")
    anonymous_id = models.CharField(max_length=rules.PROFILE_ID_MAX)
    profile_id = models.CharField(max_length=rules.PROFILE_ID_MAX, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app", "anonymous_id"], name="wire_anon_unique")
        ]

    def __str__(self) -> str:
        return f"{self.anonymous_id} → {self.profile_id}"


class S2SSession(ResendSlot):
    """A backend signed in on /s2sdispatcher with a server key, for one brainCloud app.

    Only a hash of the session id is kept. The session lives while its key does: a revoked or
    expired key (or a disabled app) ends it.
    """

    key_hash = models.CharField(max_length=64, primary_key=True)
    server_key = models.ForeignKey(ServerKey, on_delete=models.CASCADE, related_name="s2s_sessions")
    app = models.ForeignKey(BraincloudApp, on_delete=models.CASCADE, related_name="s2s_sessions")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.app_id}:{self.server_key_id}"
