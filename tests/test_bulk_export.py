"""Exporting a type's codes and a generate job's result as CSV rows."""

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import Code
from redemption.services import bulk
from tests.bulk_helpers import start_and_run
from tests.factories import CodeFactory, SharedRedemptionFactory


def test_export_streams_every_code_of_the_type_once(ops, code_type, settings, monkeypatch):
    monkeypatch.setattr(bulk.export, "EXPORT_CHUNK_SIZE", 7)
    batch, _ = bulk.codes_generate_inline(
        actor=ops, code_type_name=code_type.name, quantity=30, custom_code_info={"a": 1}
    )
    redeemed = CodeFactory(
        code_type=code_type,
        state="Redeemed",
        redeemed_by_profile_id="p-1",
        redeemed_at=timezone.now(),
    )
    CodeFactory()  # another type

    rows = bulk.export_rows(code_type=code_type)

    assert not isinstance(rows, list)
    rows = list(rows)
    assert rows[0] == bulk.EXPORT_HEADER
    assert len(rows) == 32
    assert len({r[0] for r in rows[1:]}) == 31
    by_scan = {r[0]: r for r in rows[1:]}
    row = by_scan[redeemed.scan_code]
    assert row[1:4] == ["Redeemed", code_type.name, ""]
    assert row[4] == "{}"
    assert row[5] == "p-1"
    assert row[6].endswith("Z")
    generated = next(r for r in rows[1:] if r[3] == str(batch.pk))
    assert generated[4] == '{"a":1}'
    assert generated[1] == "Inactive"


def test_export_filters_by_state_and_batch(ops, code_type):
    batch, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name=code_type.name, quantity=5, state="Available"
    )
    CodeFactory(code_type=code_type, state="Available")
    CodeFactory(code_type=code_type, state="Inactive")

    available = list(bulk.export_rows(code_type=code_type, state="Available"))
    in_batch = list(bulk.export_rows(code_type=code_type, batch_id=str(batch.pk)))
    inactive_in_batch = list(
        bulk.export_rows(code_type=code_type, state="Inactive", batch_id=batch.pk)
    )

    assert len(available) == 1 + 6
    assert sorted(r[0] for r in in_batch[1:]) == sorted(generated)
    assert inactive_in_batch == [bulk.EXPORT_HEADER]


def test_export_refuses_an_unknown_state_or_batch(code_type):
    with pytest.raises(exc.InvalidParameterError):
        bulk.export_rows(code_type=code_type, state="Lost")
    with pytest.raises(exc.InvalidParameterError):
        bulk.export_rows(code_type=code_type, batch_id="nope")
    with pytest.raises(exc.InvalidParameterError):
        bulk.export_rows(code_type=code_type, batch_id="2f1c3e4a-0000-4000-8000-000000000000")


def test_export_of_a_shared_type_lists_its_redemptions(shared_type):
    SharedRedemptionFactory(code_type=shared_type, profile_id="ann")
    SharedRedemptionFactory(
        code_type=shared_type, profile_id="bob", state="Failed", redeemed_at=None
    )

    rows = list(bulk.export_rows(code_type=shared_type, state="Redeemed"))

    assert rows[1:] == [
        [
            shared_type.scan_code,
            "Redeemed",
            shared_type.name,
            "",
            "{}",
            "ann",
            rows[1][6],
            rows[1][7],
            "",
            "",
            "{}",
            "",
            "",
        ]
    ]


def test_the_result_of_a_generate_job_lists_its_codes(ops, code_type):
    job = start_and_run(actor=ops, code_type_name=code_type.name, quantity=12)
    CodeFactory(code_type=code_type)  # not in the batch

    rows = list(bulk.job_result_rows(job))

    assert rows[0] == ["scanCode"]
    assert sorted(r[0] for r in rows[1:]) == sorted(
        Code.objects.filter(batch=job.batch).values_list("scan_code", flat=True)
    )
    assert len(rows) == 13


def test_only_a_succeeded_generate_job_has_a_result(ops, code_type):
    queued = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=2)
    with pytest.raises(exc.JobNotFoundError):
        bulk.job_result_rows(queued)
