"""JSON shapes the API answers with: code types, code records, attempts, audit events, jobs."""

from datetime import UTC, datetime
from typing import Any

from redemption.models import Attempt, AuditEvent, Code, CodeType, SharedRedemption


def ts(value: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds (truncated) and Z: 2026-01-02T03:04:05.678Z."""
    if value is None:
        return None
    # isoformat writes a four-digit year and, in UTC, ends in "+00:00"; a record holds up to
    # six of these, so the fastest spelling (2.6 µs against strftime's 6.4) is worth having.
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def code_type_record(ct: CodeType, counts: dict[str, int]) -> dict[str, Any]:
    fulfillment = None
    if ct.has_fulfillment:
        fulfillment = {
            "url": ct.fulfillment_url,
            "async": ct.fulfillment_async,
            "maxRetries": ct.fulfillment_max_retries,
            "timeoutSeconds": ct.fulfillment_timeout_seconds,
        }
    return {
        "codeType": ct.name,
        "description": ct.description,
        "codeUseType": ct.use_type,
        "scanCode": ct.scan_code if ct.is_shared else None,
        "validStart": ts(ct.valid_start),
        "validEnd": ts(ct.valid_end),
        "maxRedemptions": ct.max_redemptions,
        "redemptionCount": ct.redemption_count,
        "customCodeInfo": ct.custom_code_info,
        "isDisabled": ct.is_disabled,
        "archivedAt": ts(ct.archived_at),
        "fulfillment": fulfillment,
        "version": ct.version,
        "createdAt": ts(ct.created_at),
        "updatedAt": ts(ct.updated_at),
        "stateCounts": counts,
    }


def code_record(record: Code | SharedRedemption) -> dict[str, Any]:
    if isinstance(record, SharedRedemption):
        ct = record.code_type
        return {
            "redemptionCodeId": str(record.pk),
            "scanCode": ct.scan_code,
            "codeType": ct.name,
            "codeUseType": ct.use_type,
            "codeState": record.state,
            "version": record.version,
            "customCodeInfo": record.custom_code_info,
            "customRedemptionInfo": record.custom_redemption_info,
            "redeemedByProfileId": record.profile_id,
            "redeemedByProfileName": record.profile_name,
            "invalidationReason": None,
            "batchId": None,
            "currentAttempt": record.current_attempt,
            "createdAt": ts(record.created_at),
            "activatedAt": None,
            "redeemedAt": ts(record.redeemed_at),
            "invalidatedAt": None,
            "updatedAt": ts(record.updated_at),
        }
    return {
        "redemptionCodeId": str(record.pk),
        "scanCode": record.scan_code,
        "codeType": record.code_type.name,
        "codeUseType": record.code_type.use_type,
        "codeState": record.state,
        "version": record.version,
        "customCodeInfo": record.custom_code_info,
        "customRedemptionInfo": record.custom_redemption_info,
        "redeemedByProfileId": record.redeemed_by_profile_id,
        "redeemedByProfileName": record.redeemed_by_profile_name,
        "invalidationReason": record.invalidation_reason,
        "batchId": str(record.batch_id) if record.batch_id else None,
        "currentAttempt": record.current_attempt,
        "createdAt": ts(record.created_at),
        "activatedAt": ts(record.activated_at),
        "redeemedAt": ts(record.redeemed_at),
        "invalidatedAt": ts(record.invalidated_at),
        "updatedAt": ts(record.updated_at),
    }


def attempt_record(a: Attempt) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "profileId": a.profile_id,
        "state": a.state,
        "startedAt": ts(a.started_at),
        "finishedAt": ts(a.finished_at),
        "errorCode": a.error_code,
        "errorMsg": a.error_msg,
        "response": a.response,
    }


def audit_record(e: AuditEvent) -> dict[str, Any]:
    return {
        "at": ts(e.at),
        "actorKind": e.actor_kind,
        "actor": e.actor_label,
        "action": e.action,
        "details": e.details,
    }


def job_record(job: Any) -> dict[str, Any]:
    """JSON shape of a background job; resultUrl only for a succeeded generate job."""
    result_url = None
    if job.kind == "generate" and job.status == "succeeded":
        result_url = f"/api/v1/server/jobs/{job.pk}/result.csv"
    return {
        "jobId": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "errors": job.errors,
        "createdAt": ts(job.created_at),
        "finishedAt": ts(job.finished_at),
        "resultUrl": result_url,
    }
