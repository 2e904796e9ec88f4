"""Generating codes: inline and as a job, options, code space, the collision top-up."""

import pytest
from django.utils import timezone

from redemption import codes
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import code_inserts
from redemption.models import AuditEvent, Batch, Code, Job
from redemption.services import bulk
from tests.bulk_helpers import fields_of, start_and_run
from tests.factories import CodeFactory, CodeTypeFactory


def test_a_generate_job_of_100k_codes_yields_exactly_that_many_distinct_codes(ops, code_type):
    job = bulk.job_generate_start(
        actor=ops, code_type_name=code_type.name, quantity=100_000, state="Available"
    )
    assert job.status == "queued"
    assert job.total == 100_000

    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.total == job.done == 100_000
    assert job.started_at is not None
    assert job.finished_at is not None
    batch_codes = Code.objects.filter(batch=job.batch)
    assert batch_codes.count() == 100_000
    assert batch_codes.values("canonical").distinct().count() == 100_000
    assert set(batch_codes.values_list("state", flat=True).distinct()) == {"Available"}
    assert not batch_codes.filter(activated_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="codes.generate", target_id=str(job.batch_id))
    assert event.details["count"] == 100_000
    assert event.actor_label == ops.label


def test_generated_codes_have_the_requested_shape_and_defaults(ops, code_type):
    job = start_and_run(
        actor=ops,
        code_type_name=code_type.name,
        quantity=50,
        prefix="xmas",
        algorithm_details={"length": 12},
        custom_code_info={"sku": "GC-50"},
    )

    batch = job.batch
    assert (batch.algorithm, batch.prefix, batch.length, batch.include_check) == (
        "Crockford",
        "XMAS",
        12,
        False,
    )
    assert batch.quantity == 50
    for code in Code.objects.filter(batch=batch):
        assert code.scan_code.startswith("XMAS-")
        assert len(code.canonical) == 4 + 12
        assert code.canonical == codes.canonical(code.scan_code)
        assert code.state == "Inactive"
        assert code.activated_at is None
        assert code.version == 1
        assert code.current_attempt == 0
        assert code.custom_code_info == {"sku": "GC-50"}
        assert code.custom_redemption_info == {}
        assert code.code_type_id == code_type.pk
        assert not code.is_shared_anchor


def test_check_character_codes_validate_and_typos_are_caught(ops, code_type):
    batch, generated = bulk.codes_generate_inline(
        actor=ops,
        code_type_name=code_type.name,
        quantity=200,
        prefix="GC",
        algorithm_details={"includeCheck": True, "length": 10},
    )

    assert len(generated) == 200
    assert batch.include_check
    for scan in generated:
        body = codes.canonical(scan)[len("GC") :]
        assert len(body) == 10
        assert codes.has_valid_check(body)
    shape = codes.CodeShape(length=10, prefix="GC", include_check=True)
    typo = codes.canonical(generated[0])
    typo = typo[:-2] + ("0" if typo[-2] != "0" else "1") + typo[-1]
    assert shape.check_fails(typo)


def test_inline_generation_returns_the_codes_of_one_batch(ops, code_type):
    batch, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name=code_type.name, quantity=1000, algorithm="FiveByFive"
    )

    assert len(generated) == len(set(generated)) == 1000
    assert set(Code.objects.filter(batch=batch).values_list("scan_code", flat=True)) == set(
        generated
    )
    assert all(len(s.split("-")) == 5 for s in generated)
    assert AuditEvent.objects.filter(action="codes.generate", target_id=str(batch.pk)).count() == 1


@pytest.mark.parametrize("quantity", [0, 1001, -5, True, "10", 2.0, None])
def test_inline_generation_refuses_a_bad_quantity(ops, code_type, quantity):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.codes_generate_inline(actor=ops, code_type_name=code_type.name, quantity=quantity)
    assert "quantity" in fields_of(caught.value)
    assert not Batch.objects.exists()


def test_job_generation_refuses_more_than_ten_million(ops, code_type):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10_000_001)
    assert "quantity" in fields_of(caught.value)
    assert not Job.objects.exists()
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"algorithm": "Base64"}, "algorithmName"),
        ({"algorithm": 7}, "algorithmName"),
        ({"prefix": "BAD PREFIX!"}, "prefix"),
        ({"algorithm_details": {"length": 7}}, "algorithmDetails.length"),
        ({"algorithm_details": {"length": 33}}, "algorithmDetails.length"),
        ({"algorithm_details": {"length": "12"}}, "algorithmDetails.length"),
        ({"algorithm_details": {"includeCheck": "yes"}}, "algorithmDetails.includeCheck"),
        ({"algorithm_details": {"checksum": True}}, "algorithmDetails.checksum"),
        ({"algorithm_details": ["includeCheck"]}, "algorithmDetails"),
        (
            {"algorithm": "FiveByFive", "algorithm_details": {"length": 16}},
            "algorithmDetails.length",
        ),
        (
            {"algorithm": "StructuredGuid", "algorithm_details": {"includeCheck": True}},
            "algorithmDetails.includeCheck",
        ),
        ({"state": "Redeemed"}, "codeState"),
        ({"custom_code_info": ["not", "an", "object"]}, "customCodeInfo"),
    ],
)
def test_generation_options_are_validated_before_anything_is_created(
    ops, code_type, options, field
):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10, **options)
    assert field in fields_of(caught.value)
    assert not Job.objects.exists()
    assert not Batch.objects.exists()


def test_generation_needs_an_existing_enabled_personal_type(ops, shared_type):
    disabled = CodeTypeFactory(is_disabled=True)

    with pytest.raises(exc.TypeMustBeSingleUseError):
        bulk.codes_generate_inline(actor=ops, code_type_name=shared_type.name, quantity=5)
    with pytest.raises(exc.CodeTypeNotFoundError):
        bulk.job_generate_start(actor=ops, code_type_name="no-such-type", quantity=5)
    with pytest.raises(exc.CodeTypeDisabledError):
        bulk.job_generate_start(actor=ops, code_type_name=disabled.name, quantity=5)
    assert not Batch.objects.exists()


def test_a_server_key_actor_may_generate(code_type):
    key_actor = Actor(kind="server_key", id="1", label="server key backend")
    batch, generated = bulk.codes_generate_inline(
        actor=key_actor, code_type_name=code_type.name, quantity=3
    )
    assert len(generated) == 3
    assert batch.created_by == "server key backend"


def test_generation_is_refused_when_it_would_use_too_much_of_the_code_space(ops, code_type):
    # Crockford, 8 characters including a check character: 32**7 ≈ 3.4e10 codes, so
    # 10,000,000 codes (x1000 safety) fit only while fewer than ~2.4e10 were issued.
    options = {"algorithm_details": {"length": 8, "includeCheck": True}}
    now = timezone.now()
    Batch.objects.bulk_create(
        Batch(
            code_type=code_type,
            kind="generate",
            algorithm="Crockford",
            length=8,
            include_check=True,
            prefix="",
            quantity=2_100_000_000,
            created_at=now,
        )
        for _ in range(12)
    )

    with pytest.raises(exc.InsufficientCodeSpaceError) as caught:
        bulk.job_generate_start(
            actor=ops, code_type_name=code_type.name, quantity=10_000_000, **options
        )

    assert caught.value.http_status == 400
    assert 0 < caught.value.details["maxQuantity"] < 10_000_000
    assert not Job.objects.exists()
    # Another prefix is another code space, so the same request fits there.
    job = bulk.job_generate_start(
        actor=ops, code_type_name=code_type.name, quantity=10_000_000, prefix="NEW", **options
    )
    assert job.batch.quantity == 10_000_000


def test_code_space_is_shared_by_display_variants_of_a_prefix(db):
    now = timezone.now()
    ct = CodeTypeFactory()
    Batch.objects.create(
        code_type=ct,
        kind="generate",
        algorithm="Crockford",
        length=8,
        prefix="AB-C",
        quantity=7,
        created_at=now,
    )
    Batch.objects.create(
        code_type=ct, kind="import", algorithm="", prefix="", quantity=1000, created_at=now
    )

    assert bulk.already_issued(codes.CodeShape(length=8, prefix="ABC")) == 7
    assert bulk.already_issued(codes.CodeShape(length=8, prefix="ABD")) == 0


def test_collisions_are_topped_up_until_the_batch_is_full(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 3
    other = CodeFactory(
        scan_code="TAKEN-0001",
        state="Redeemed",
        redeemed_by_profile_id="p",
        redeemed_at=timezone.now(),
    )
    batch = Batch.objects.create(
        code_type=code_type, kind="generate", quantity=5, created_at=timezone.now()
    )
    candidates = iter(
        [
            ("TAKEN-0001", "TAKEN0001"),  # exists in the database
            ("FRESH-0001", "FRESH0001"),
            ("FRESH-0001", "FRESH0001"),  # repeated by the generator
            ("FRESH-0002", "FRESH0002"),
            ("TAKEN-0001", "TAKEN0001"),
            ("FRESH-0003", "FRESH0003"),
            ("FRESH-0004", "FRESH0004"),
            ("FRESH-0005", "FRESH0005"),
            ("FRESH-0006", "FRESH0006"),
        ]
    )
    progress = []

    done = bulk.batch_fill(
        batch=batch,
        quantity=5,
        state="Available",
        custom_code_info={},
        candidates=candidates,
        on_chunk=progress.append,
    )

    assert done == 5
    assert sorted(Code.objects.filter(batch=batch).values_list("canonical", flat=True)) == [
        "FRESH0001",
        "FRESH0002",
        "FRESH0003",
        "FRESH0004",
        "FRESH0005",
    ]
    assert next(candidates) == ("FRESH-0006", "FRESH0006")  # drew no more than it needed
    assert progress[-1] == 5
    other.refresh_from_db()
    assert other.batch_id is None
    assert other.state == "Redeemed"


def test_after_a_chunk_collides_the_next_chunks_skip_the_straight_copy(
    code_type, settings, monkeypatch
):
    settings.JOB_BATCH_SIZE = 2
    CodeFactory(scan_code="TAKEN-0001")
    batch = Batch.objects.create(
        code_type=code_type, kind="generate", quantity=5, created_at=timezone.now()
    )
    real = code_inserts.codes_insert
    tried_copy = []

    def spy(rows, **kwargs):
        tried_copy.append(kwargs["direct"])
        return real(rows, **kwargs)

    monkeypatch.setattr(code_inserts, "codes_insert", spy)
    candidates = [("FRESH-0001", "FRESH0001"), ("FRESH-0002", "FRESH0002")]
    candidates += [("TAKEN-0001", "TAKEN0001"), ("FRESH-0003", "FRESH0003")]
    candidates += [("FRESH-0004", "FRESH0004"), ("FRESH-0005", "FRESH0005")]

    done = bulk.batch_fill(
        batch=batch,
        quantity=5,
        state="Inactive",
        custom_code_info={},
        candidates=iter(candidates),
    )

    assert done == Code.objects.filter(batch=batch).count() == 5
    # chunk 2 met the taken code; from then on collisions are expected
    assert tried_copy == [True, True, False]


def test_top_up_gives_up_when_the_candidates_run_out(code_type):
    CodeFactory(scan_code="SPARE-0001")
    batch = Batch.objects.create(
        code_type=code_type, kind="generate", quantity=2, created_at=timezone.now()
    )

    with pytest.raises(exc.InsufficientCodeSpaceError):
        bulk.batch_fill(
            batch=batch,
            quantity=2,
            state="Inactive",
            custom_code_info={},
            candidates=iter([("SPARE-0001", "SPARE0001"), ("NEW-0001", "NEW0001")]),
        )
    assert list(Code.objects.filter(batch=batch).values_list("canonical", flat=True)) == ["NEW0001"]


def test_chunks_drawn_ahead_fill_the_batch_exactly(code_type):
    # As a generate job runs: chunks cut (with their COPY text on PostgreSQL) before they are
    # inserted; the last one holds more codes than the batch still needs.
    batch = Batch.objects.create(
        code_type=code_type, kind="generate", quantity=6, created_at=timezone.now()
    )
    now = timezone.now()
    layout = code_inserts.ahead_layout(
        code_type_id=code_type.pk,
        batch_id=batch.pk,
        now=now,
        state="Available",
        info_json='{"sku":"D"}',
    )
    candidates = [(f"DRAWN-{i:04}", f"DRAWN{i:04}") for i in range(1, 9)]
    candidates.insert(2, ("DRAWN-0001", "DRAWN0001"))  # repeated within the first chunk
    drawn = bulk.drawn_chunks(iter(candidates), size=4, layout=layout)

    done = bulk.batch_fill(
        batch=batch,
        quantity=6,
        state="Available",
        custom_code_info={"sku": "D"},
        drawn=drawn,
        now=now,
    )

    assert done == 6
    stored = Code.objects.filter(batch=batch)
    assert sorted(stored.values_list("canonical", flat=True)) == [
        f"DRAWN{i:04}" for i in range(1, 7)
    ]
    assert {(c.state, c.activated_at, c.created_at) for c in stored} == {("Available", now, now)}
    assert {tuple(c.custom_code_info.items()) for c in stored} == {(("sku", "D"),)}
