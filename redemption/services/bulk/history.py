"""The migration import (`preserveState`): codes arrive with their state and history.

A personal type takes one row per code in any state, with its redeemer, times, invalidation
reason and customRedemptionInfo. A shared type takes one row per profile redemption and counts
the ones that hold a slot (Redeemed, InProgress) in its redemption count, within its cap. An
InProgress or Failed row gets its attempt (number 1), so fulfilment replies, timeouts and
retries treat it like any other. A code, or a shared type's profile, that is already taken -
earlier in the file or in the database - is a per-line error, never merged.
"""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils import timezone

from redemption import exceptions as exc
from redemption.db import claims, code_inserts
from redemption.ids import uuid7
from redemption.models import (
    SLOT_STATES,
    Attempt,
    Batch,
    Code,
    CodeType,
    Job,
    SharedRedemption,
    State,
)
from redemption.services.bulk.history_lines import (
    Header,
    HistoryLine,
    LineError,
    parse_history_line,
    read_header,
)
from redemption.services.bulk.imports import (
    LINE_UNREADABLE,
    ImportRun,
    LineTaker,
    Pending,
    run_lines,
)
from redemption.services.bulk.jobs import Progress
from redemption.services.bulk.leases import Lease
from redemption.services.timeouts import attempt_deadline

NO_HEADER = "A migration import (preserveState) needs a header row naming its columns first."


def run_import_job(job: Job, lease: Lease, progress: Progress) -> None:
    """Run an import job: a migration import when it was started with preserveState."""
    if job.params.get("preserveState"):
        run_lines(job, lease, progress, HistoryRun)
    else:
        run_lines(job, lease, progress, ImportRun)


class HistoryTaker(LineTaker):
    """The reader thread's side of a migration import: lines are read against the header."""

    def __init__(self, run: "HistoryRun") -> None:
        super().__init__(run)
        self.header_text = run.header_text
        parsed = read_header(self.header_text) if self.header_text else None
        self.header: Header | None = parsed if isinstance(parsed, Header) else None
        self.shared = run.ct.is_shared
        self.shared_canonical = run.ct.canonical_scan_code if run.ct.is_shared else None
        self.shared_display = run.ct.scan_code or ""

    def state(self) -> dict[str, Any]:
        return {**super().state(), "header": self.header_text}

    def take(self, line_no: int, text: str) -> None:
        if not self.header_seen:
            self.header_seen = True
            parsed = read_header(text)
            if isinstance(parsed, Header):
                self.header_text, self.header = text, parsed
                return
            self.taken.records += 1
            self.invalid(line_no, None, exc.InvalidParameterError.code, f"{NO_HEADER} {parsed}")
            return
        self.taken.records += 1
        self.add_line(line_no, text)

    def add_line(self, line_no: int, text: str) -> None:
        if self.header is None:
            self.invalid(line_no, None, exc.InvalidParameterError.code, NO_HEADER)
            return
        try:
            parsed = parse_history_line(
                text,
                line=line_no,
                header=self.header,
                shared_canonical=self.shared_canonical,
                shared_display=self.shared_display,
            )
        except Exception:
            self.invalid(line_no, None, exc.InvalidParameterError.code, LINE_UNREADABLE)
            return
        if isinstance(parsed, LineError):
            self.invalid(line_no, parsed.scan_code, parsed.code, parsed.message)
            return
        key = (parsed.profile_id or "") if self.shared else parsed.canonical
        if key in self.taken.pending:
            self.duplicate_in_file(line_no, parsed.display)
            return
        self.taken.pending[key] = parsed


class HistoryRun(ImportRun):
    """An import whose lines keep their state and history (see the module docstring)."""

    def __init__(self, job: Job, batch: Batch, lease: Lease, progress: Progress) -> None:
        super().__init__(job, batch, lease, progress)
        self.ct = CodeType.objects.get(pk=batch.code_type_id)
        self.header_text: str = job.checkpoint.get("header", "") if job.done else ""
        self.taken_state["header"] = self.header_text
        # Profiles this run imported into a shared type: a later row for one of them is a
        # duplicate in the file, not in the database.
        self.seen: set[str] = set()

    def taker(self) -> HistoryTaker:
        return HistoryTaker(self)

    def _insert(self, pending: Pending) -> None:
        lines: list[HistoryLine] = [HistoryLine(*line) for line in pending.values()]
        if self.ct.is_shared:
            self._insert_shared(lines)
        else:
            self._insert_personal(lines)

    def _insert_personal(self, lines: list[HistoryLine]) -> None:
        taken = {
            canon: (batch_id, anchor)
            for canon, batch_id, anchor in Code.objects.filter(
                canonical__in=[line.canonical for line in lines]
            ).values_list("canonical", "batch_id", "is_shared_anchor")
        }
        fresh = []
        for line in lines:
            if line.canonical not in taken:
                fresh.append(line)
                continue
            batch_id, anchor = taken[line.canonical]
            if batch_id == self.batch.pk:
                self.duplicate_in_file(line.line, line.display)
            else:
                self.duplicate_in_database(line.line, line.display, anchor)
        codes = [self._code(line) for line in fresh]
        # A code someone added since the look-up fails the chunk; it is then retried line by
        # line, and that line alone is reported.
        code_inserts.codes_insert_values(codes)
        Attempt.objects.bulk_create(
            self._attempt(line, code_id=code["id"])
            for line, code in zip(fresh, codes, strict=True)
            if line.state in (State.IN_PROGRESS, State.FAILED)
        )
        self.summary["imported"] += len(codes)

    def _code(self, line: HistoryLine) -> dict[str, Any]:
        """The columns of one imported code."""
        now = self.now
        activated = line.activated_at
        if activated is None and line.state == State.AVAILABLE:
            activated = now
        invalidated = line.invalidated_at
        if invalidated is None and line.state == State.INVALIDATED:
            invalidated = now
        return {
            "id": uuid7(),
            "code_type_id": self.ct.pk,
            "scan_code": line.display,
            "canonical": line.canonical,
            "state": line.state,
            "custom_code_info": json.loads(line.info_json or "{}"),
            "custom_redemption_info": json.loads(line.redemption_info_json),
            "redeemed_by_profile_id": line.profile_id,
            "redeemed_by_profile_name": line.profile_name,
            "invalidation_reason": line.invalidation_reason,
            "batch_id": self.batch.pk,
            "current_attempt": 1 if line.state in (State.IN_PROGRESS, State.FAILED) else 0,
            "created_at": line.created_at or now,
            "activated_at": activated,
            "redeemed_at": line.redeemed_at,
            "invalidated_at": invalidated,
            "updated_at": now,
        }

    def _attempt(
        self,
        line: HistoryLine,
        *,
        code_id: UUID | None = None,
        shared: SharedRedemption | None = None,
    ) -> Attempt:
        """The attempt an imported InProgress or Failed record is on: a fresh window for the
        first, a closed one for the second."""
        failed = line.state == State.FAILED
        return Attempt(
            code_id=code_id,
            shared=shared,
            attempt=1,
            profile_id=line.profile_id or "",
            profile_name=line.profile_name,
            state=line.state,
            started_at=self.now,
            deadline_at=self.now if failed else attempt_deadline(self.ct, self.now),
            finished_at=self.now if failed else None,
            error_msg="Imported as Failed." if failed else None,
        )

    def _insert_shared(self, lines: list[HistoryLine]) -> None:
        stored = set(
            SharedRedemption.objects.filter(
                code_type_id=self.ct.pk, profile_id__in=[line.profile_id for line in lines]
            ).values_list("profile_id", flat=True)
        )
        fresh = []
        for line in lines:
            profile = line.profile_id or ""
            if profile in self.seen:
                self.duplicate_in_file(line.line, line.display)
            elif profile in stored:
                self._profile_taken(line)
            else:
                fresh.append(line)
        holding = [line for line in fresh if line.state in SLOT_STATES]
        room = claims.code_type_take_slots(code_type_id=self.ct.pk, wanted=len(holding))
        over_cap = {id(line) for line in holding[room:]}
        for line in holding[room:]:
            self.error(
                line.line,
                line.display,
                exc.MaxRedemptionsReachedError.code,
                "The code type's maxRedemptions is reached; this redemption would exceed it.",
            )
            self.summary["invalid"] += 1
        fresh = [line for line in fresh if id(line) not in over_cap]
        records = [self._redemption(line) for line in fresh]
        SharedRedemption.objects.bulk_create(records)
        Attempt.objects.bulk_create(
            self._attempt(line, shared=record)
            for line, record in zip(fresh, records, strict=True)
            if line.state in (State.IN_PROGRESS, State.FAILED)
        )
        self.seen.update(line.profile_id or "" for line in fresh)
        self.summary["imported"] += len(records)

    def _profile_taken(self, line: HistoryLine) -> None:
        self.summary["duplicatesInDatabase"] += 1
        self.error(
            line.line,
            line.display,
            exc.CodeDuplicateError.code,
            f"Profile {line.profile_id} already has a redemption of this shared code type.",
        )

    def _redemption(self, line: HistoryLine) -> SharedRedemption:
        now: datetime = self.now
        info = self.ct.custom_code_info if line.info_json is None else json.loads(line.info_json)
        return SharedRedemption(
            code_type_id=self.ct.pk,
            profile_id=line.profile_id or "",
            profile_name=line.profile_name,
            state=line.state,
            custom_code_info=info,
            custom_redemption_info=json.loads(line.redemption_info_json),
            current_attempt=1 if line.state in (State.IN_PROGRESS, State.FAILED) else 0,
            created_at=line.created_at or line.redeemed_at or now,
            redeemed_at=line.redeemed_at,
            updated_at=timezone.now(),
        )
