"""The raw bulk insert of codes stores exactly what a plain ORM bulk_create stores.

The product keeps one implementation (db/code_inserts.py); the ORM version lives only here,
as the reference it is held to on each database.
"""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from redemption import codes
from redemption.db import code_inserts
from redemption.models import Batch, Code, CodeType
from tests.factories import CodeFactory, CodeTypeFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
SCANS = ["PAR-0001", "PAR-0002", "PAR-0003", "PAR-0004", "TAKEN-0001"]
# (state, customCodeInfo) per row for the per-row modes
PER_ROW = [
    ("Available", {"sku": "A", "n": 1}),
    ("Inactive", {}),
    ("Available", {"nested": {"ok": True}, "list": [1, "two"]}),
    ("Inactive", {"note": "é ü"}),
    ("Available", {}),
]
# Columns the two paths fill from different inputs; checked on their own.
OWN = {"id", "code_type_id", "batch_id"}
MODES = ["batch-wide", "per-row"]
if connection.vendor == "postgresql":
    MODES.append("per-row-returning")


def _batch(ct: CodeType) -> Batch:
    return Batch.objects.create(code_type=ct, kind="import", created_at=NOW)


def _stored(ct: CodeType) -> dict[str, dict]:
    names = [field.attname for field in Code._meta.concrete_fields]
    return {row["canonical"]: row for row in Code.objects.filter(code_type=ct).values(*names)}


def _wanted(mode: str) -> list[tuple[str, str, str, dict]]:
    """(display, canonical, state, info) of every row the test inserts."""
    if mode == "batch-wide":
        return [(s, codes.canonical(s), "Available", {"sku": "B"}) for s in SCANS]
    return [(s, codes.canonical(s), st, info) for s, (st, info) in zip(SCANS, PER_ROW, strict=True)]


def _insert_raw(mode: str, ct: CodeType, batch: Batch) -> int:
    rows = _wanted(mode)
    ids = {"code_type_id": ct.pk, "batch_id": batch.pk, "now": NOW}
    if mode == "batch-wide":
        return code_inserts.codes_insert(
            [(display, canon) for display, canon, _, _ in rows],
            state="Available",
            info_json=json.dumps({"sku": "B"}, separators=(",", ":")),
            **ids,
        )
    per_row = [
        (display, canon, state, json.dumps(info, separators=(",", ":")))
        for display, canon, state, info in rows
    ]
    if mode == "per-row-returning":
        return len(code_inserts.codes_insert_returning(per_row, **ids))
    return code_inserts.codes_insert(per_row, **ids)


def _insert_orm(mode: str, ct: CodeType, batch: Batch) -> None:
    Code.objects.bulk_create(
        [
            Code(
                code_type=ct,
                batch=batch,
                scan_code=display,
                canonical=canon,
                state=state,
                custom_code_info=info,
                created_at=NOW,
                updated_at=NOW,
                activated_at=NOW if state == "Available" else None,
            )
            for display, canon, state, info in _wanted(mode)
        ],
        ignore_conflicts=True,
    )


@pytest.mark.parametrize("mode", MODES)
def test_the_raw_insert_stores_what_bulk_create_stores(mode):
    taken = CodeFactory(scan_code="TAKEN-0001", state="Invalidated")
    before = (taken.code_type_id, taken.batch_id, taken.state, taken.version, taken.updated_at)
    raw_type, orm_type = CodeTypeFactory(), CodeTypeFactory()
    raw_batch, orm_batch = _batch(raw_type), _batch(orm_type)

    inserted = _insert_raw(mode, raw_type, raw_batch)
    raw = _stored(raw_type)
    Code.objects.filter(code_type=raw_type).delete()
    _insert_orm(mode, orm_type, orm_batch)
    orm = _stored(orm_type)

    assert inserted == len(SCANS) - 1  # the taken code is skipped, not overwritten
    assert set(raw) == set(orm) == {codes.canonical(s) for s in SCANS[:-1]}
    for canon in raw:
        assert {k: v for k, v in raw[canon].items() if k not in OWN} == {
            k: v for k, v in orm[canon].items() if k not in OWN
        }
        assert (raw[canon]["code_type_id"], raw[canon]["batch_id"]) == (
            raw_type.pk,
            raw_batch.pk,
        )
        assert raw[canon]["id"].version == orm[canon]["id"].version == 7
    taken.refresh_from_db()
    assert (taken.code_type_id, taken.batch_id, taken.state, taken.version, taken.updated_at) == (
        before
    )
