"""Export a type's codes, or a generate job's result, as CSV rows streamed in key order."""

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models import QuerySet

from redemption import exceptions as exc
from redemption.ids import uuid_or_none
from redemption.models import STATE_ORDER, Batch, Code, CodeType, Job, SharedRedemption
from redemption.records import ts

EXPORT_CHUNK_SIZE = 5_000
EXPORT_HEADER = [
    "scanCode",
    "codeState",
    "codeType",
    "batchId",
    "customCodeInfo",
    "redeemedByProfileId",
    "redeemedAt",
    "createdAt",
    # The rest of a code's history, so that an export re-imports as it is with preserveState.
    "redeemedByProfileName",
    "invalidationReason",
    "customRedemptionInfo",
    "activatedAt",
    "invalidatedAt",
]


def export_rows(
    *, code_type: CodeType, state: str | None = None, batch_id: uuid.UUID | str | None = None
) -> Iterator[list[str]]:
    """CSV rows (header first) of a type's codes, optionally one state or batch; streamed."""
    if state is not None and state not in STATE_ORDER:
        raise exc.invalid_fields({"state": f"must be one of {', '.join(STATE_ORDER)}"})
    batch_uuid = None
    if batch_id is not None:
        batch_uuid = uuid_or_none(str(batch_id))
        if batch_uuid is None:
            raise exc.invalid_fields({"batchId": "must be a batch id (UUID)"})
        if (
            code_type.is_shared
            or not Batch.objects.filter(pk=batch_uuid, code_type=code_type).exists()
        ):
            raise exc.invalid_fields({"batchId": "no such batch in this code type"})
    if code_type.is_shared:
        return _export_shared(code_type, state)
    return _export_personal(code_type, state, batch_uuid)


def _keyset(qs: QuerySet[Any], fields: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Walk a queryset in primary-key order, one chunk per query, never holding a cursor open."""
    last = None
    while True:
        page = qs if last is None else qs.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list("pk", *fields)[:EXPORT_CHUNK_SIZE])
        yield from rows
        if len(rows) < EXPORT_CHUNK_SIZE:
            return
        last = rows[-1][0]


def _json_text(value: Any) -> str:
    return json.dumps(value or {}, separators=(",", ":"), ensure_ascii=False)


def _export_personal(
    ct: CodeType, state: str | None, batch_id: uuid.UUID | None
) -> Iterator[list[str]]:
    yield list(EXPORT_HEADER)
    qs = Code.objects.filter(code_type=ct, is_shared_anchor=False)
    if state is not None:
        qs = qs.filter(state=state)
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    fields = (
        "scan_code",
        "state",
        "batch_id",
        "custom_code_info",
        "redeemed_by_profile_id",
        "redeemed_at",
        "created_at",
        "redeemed_by_profile_name",
        "invalidation_reason",
        "custom_redemption_info",
        "activated_at",
        "invalidated_at",
    )
    for row in _keyset(qs, fields):
        _, scan, st, batch, info, profile, redeemed_at, created_at = row[:8]
        name, reason, redemption_info, activated_at, invalidated_at = row[8:]
        yield [
            scan,
            st,
            ct.name,
            str(batch) if batch else "",
            _json_text(info),
            profile or "",
            ts(redeemed_at) or "",
            ts(created_at) or "",
            name or "",
            reason or "",
            _json_text(redemption_info),
            ts(activated_at) or "",
            ts(invalidated_at) or "",
        ]


def _export_shared(ct: CodeType, state: str | None) -> Iterator[list[str]]:
    yield list(EXPORT_HEADER)
    qs = SharedRedemption.objects.filter(code_type=ct)
    if state is not None:
        qs = qs.filter(state=state)
    fields = (
        "state",
        "custom_code_info",
        "profile_id",
        "redeemed_at",
        "created_at",
        "profile_name",
        "custom_redemption_info",
    )
    for _, st, info, profile, redeemed_at, created_at, name, redemption_info in _keyset(qs, fields):
        yield [
            ct.scan_code or "",
            st,
            ct.name,
            "",
            _json_text(info),
            profile,
            ts(redeemed_at) or "",
            ts(created_at) or "",
            name or "",
            "",
            _json_text(redemption_info),
            "",
            "",
        ]


def job_result_rows(job: Job) -> Iterator[list[str]]:
    """The codes a succeeded generate job made, as CSV rows under the header `scanCode`."""
    if job.kind != Job.Kind.GENERATE or job.status != Job.Status.SUCCEEDED or job.batch_id is None:
        raise exc.JobNotFoundError("This job has no result to download.")
    return _result_rows(job.code_type_id, job.batch_id)


def _result_rows(code_type_id: int | None, batch_id: uuid.UUID) -> Iterator[list[str]]:
    yield ["scanCode"]
    # The type narrows the walk to the (code_type, id) index; the batch filters within it.
    qs = Code.objects.filter(batch_id=batch_id)
    if code_type_id is not None:
        qs = qs.filter(code_type_id=code_type_id)
    for _, scan in _keyset(qs, ("scan_code",)):
        yield [scan]
