"""Reads about generation and import batches."""

from uuid import UUID

from redemption import exceptions as exc
from redemption.models import (
    Batch,
    Code,
    CodeType,
    Move,
    State,
    sources_of,
)


def batches_of_type(code_type: CodeType, *, limit: int = 25) -> list[Batch]:
    """The most recent generation/import batches of a type."""
    return list(
        Batch.objects.filter(code_type=code_type)
        .select_related("code_type")
        .order_by("-created_at")[:limit]
    )


def batch_get(*, code_type: CodeType, batch_id: UUID) -> Batch:
    batch = Batch.objects.filter(code_type=code_type, pk=batch_id).first()
    if batch is None:
        raise exc.invalid_fields({"batchId": "no such batch for this code type"})
    return batch


def batch_open_count(batch: Batch) -> int:
    """How many codes of a batch an invalidation would touch (those it may still invalidate)."""
    return Code.objects.filter(
        batch=batch, state__in=sources_of(State.INVALIDATED, move=Move.INVALIDATE)
    ).count()
