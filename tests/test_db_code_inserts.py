"""The raw bulk insert of codes stores exactly what a plain ORM bulk_create stores.

The product keeps one implementation (db/code_inserts.py); the ORM version lives only here,
as the reference it is held to on each database.
"""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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
    # ...-ahead: the COPY text made beforehand by copy_layout(...).text, as an import's reader
    # thread makes it.
    MODES += ["per-row-returning", "batch-wide-ahead", "per-row-returning-ahead"]


def _batch(ct: CodeType) -> Batch:
    return Batch.objects.create(code_type=ct, kind="import", created_at=NOW)


def _stored(ct: CodeType) -> dict[str, dict]:
    names = [field.attname for field in Code._meta.concrete_fields]
    return {row["canonical"]: row for row in Code.objects.filter(code_type=ct).values(*names)}


def _wanted(mode: str) -> list[tuple[str, str, str, dict]]:
    """(display, canonical, state, info) of every row the test inserts."""
    if mode.startswith("batch-wide"):
        return [(s, codes.canonical(s), "Available", {"sku": "B"}) for s in SCANS]
    return [(s, codes.canonical(s), st, info) for s, (st, info) in zip(SCANS, PER_ROW, strict=True)]


def _insert_raw(mode: str, ct: CodeType, batch: Batch) -> int:
    rows = _wanted(mode)
    ids = {"code_type_id": ct.pk, "batch_id": batch.pk, "now": NOW}
    ahead = mode.endswith("-ahead")
    if mode.startswith("batch-wide"):
        pairs = [(display, canon) for display, canon, _, _ in rows]
        shared = {
            "state": "Available",
            "info_json": json.dumps({"sku": "B"}, separators=(",", ":")),
        }
        text = code_inserts.copy_layout(**ids, **shared).text(pairs) if ahead else None
        return code_inserts.codes_insert(pairs, copy_text=text, **shared, **ids)
    per_row = [
        (display, canon, state, json.dumps(info, separators=(",", ":")))
        for display, canon, state, info in rows
    ]
    if mode.startswith("per-row-returning"):
        # As an import sends a chunk whose text was made ahead: straight, else the staging insert.
        text = code_inserts.copy_layout(**ids).text(per_row) if ahead else None
        if text is not None and code_inserts.codes_copy_made_ahead(text, **ids):
            return len(per_row)
        return len(code_inserts.codes_insert_returning(per_row, direct=text is None, **ids))
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
@pytest.mark.parametrize("collides", [True, False], ids=["a-code-is-taken", "no-collision"])
def test_the_raw_insert_stores_what_bulk_create_stores(mode, collides):
    # Without a collision PostgreSQL takes the straight COPY; with one, the staging path.
    taken = CodeFactory(scan_code="TAKEN-0001" if collides else "ELSEWHERE-1", state="Invalidated")
    before = (taken.code_type_id, taken.batch_id, taken.state, taken.version, taken.updated_at)
    raw_type, orm_type = CodeTypeFactory(), CodeTypeFactory()
    raw_batch, orm_batch = _batch(raw_type), _batch(orm_type)

    inserted = _insert_raw(mode, raw_type, raw_batch)
    raw = _stored(raw_type)
    Code.objects.filter(code_type=raw_type).delete()
    _insert_orm(mode, orm_type, orm_batch)
    orm = _stored(orm_type)

    kept = SCANS[:-1] if collides else SCANS
    assert inserted == len(kept)  # the taken code is skipped, not overwritten
    assert set(raw) == set(orm) == {codes.canonical(s) for s in kept}
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


def _staged_inserts(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "ON CONFLICT" in q["sql"]]


# Rows of one chunk: one code already in the database, one repeated within the chunk.
CHUNK = [
    ("NEW-0001", "NEW0001"),
    ("TAKEN-0001", "TAKEN0001"),
    ("NEW-0002", "NEW0002"),
    ("NEW 0002", "NEW0002"),
    ("NEW-0003", "NEW0003"),
]


@pytest.mark.parametrize("direct", [True, False])
def test_a_chunk_that_collides_stores_each_free_code_once_and_counts_exactly(direct):
    taken = CodeFactory(scan_code="TAKEN-0001", state="Invalidated")
    ct = CodeTypeFactory()
    batch = _batch(ct)

    added = code_inserts.codes_insert(
        CHUNK,
        code_type_id=ct.pk,
        batch_id=batch.pk,
        now=NOW,
        state="Available",
        info_json="{}",
        direct=direct,
    )

    assert added == 3
    assert sorted(Code.objects.filter(batch=batch).values_list("scan_code", flat=True)) == [
        "NEW-0001",
        "NEW-0002",
        "NEW-0003",
    ]
    assert Code.objects.filter(canonical="TAKEN0001").get().pk == taken.pk
    assert Code.objects.count() == 4  # the refused COPY left nothing behind


def test_a_chunk_without_collisions_goes_in_by_copy_alone_on_postgresql():
    ct = CodeTypeFactory()
    batch = _batch(ct)
    rows = [("FREE-0001", "FREE0001"), ("FREE-0002", "FREE0002")]

    with CaptureQueriesContext(connection) as queries:
        added = code_inserts.codes_insert(
            rows, code_type_id=ct.pk, batch_id=batch.pk, now=NOW, state="Inactive", info_json="{}"
        )

    assert added == 2
    # SQLite has no COPY: its one INSERT ... ON CONFLICT is the whole insert.
    assert len(_staged_inserts(queries)) == (0 if connection.vendor == "postgresql" else 1)
    assert Code.objects.filter(batch=batch).count() == 2


if connection.vendor == "postgresql":

    def test_a_colliding_chunk_falls_back_to_the_staging_insert_and_returns_what_went_in():
        CodeFactory(scan_code="TAKEN-0001")
        ct = CodeTypeFactory()
        batch = _batch(ct)
        rows = [(display, canon, "Available", "{}") for display, canon in CHUNK]

        with CaptureQueriesContext(connection) as queries:
            inserted = code_inserts.codes_insert_returning(
                rows, code_type_id=ct.pk, batch_id=batch.pk, now=NOW
            )

        assert inserted == {"NEW0001", "NEW0002", "NEW0003"}
        assert len(_staged_inserts(queries)) == 1
        assert Code.objects.filter(batch=batch).count() == 3

    def test_copy_text_keeps_backslashes_tabs_and_line_breaks():
        ct = CodeTypeFactory()
        batch = _batch(ct)
        info = {"path": "C:\\new\\table", "tab": "a\tb", "lines": "a\nb\r\nc", "quote": '"x"'}
        # Indented with tabs and line breaks: raw characters COPY must escape, around escaped ones.
        rows = [("ODD-0001", "0DD0001", "Inactive", json.dumps(info, indent="\t"))]

        with CaptureQueriesContext(connection) as queries:
            inserted = code_inserts.codes_insert_returning(
                rows, code_type_id=ct.pk, batch_id=batch.pk, now=NOW
            )

        assert inserted == {"0DD0001"}
        assert _staged_inserts(queries) == []
        assert Code.objects.get(canonical="0DD0001").custom_code_info == info
