"""The migration import (`preserveState`): codes keep their state and history."""

import csv
import io
import os
import time
from datetime import UTC, datetime

import pytest
from django.db.models import Count

from redemption import exceptions as exc
from redemption.models import Attempt, Code, CodeType, Job, SharedRedemption
from redemption.selectors import state_counts
from redemption.services import bulk
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory
from tests.processes import manage

PERSONAL_HEADER = (
    "scanCode,codeState,redeemedByProfileId,redeemedByProfileName,redeemedAt,"
    "invalidationReason,customRedemptionInfo,customCodeInfo"
)


def import_history(actor, code_type, content: bytes) -> Job:
    job = bulk.job_import_start(
        actor=actor, code_type_name=code_type.name, upload=content, preserve_state=True
    )
    bulk.run_job(job.pk)
    job.refresh_from_db()
    return job


def csv_bytes(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def row_counts(code_type) -> dict[str, int]:
    """Per-state counts asked of the rows themselves, to hold the kept counters to."""
    model = SharedRedemption if code_type.is_shared else Code
    rows = model.objects.filter(code_type=code_type)
    if not code_type.is_shared:
        rows = rows.filter(is_shared_anchor=False)
    found = dict(rows.values_list("state").annotate(n=Count("*")).order_by())
    return {state: found.get(state, 0) for state in state_counts(code_type)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_every_state_imports_with_its_history(ops, code_type):
    content = "\n".join(
        [
            PERSONAL_HEADER,
            "HIST-0001,Inactive,,,,,,",
            'HIST-0002,Available,,,,,,"{""sku"": ""A""}"',
            'HIST-0003,Redeemed,p-1,Ann,2025-03-04T05:06:07.890Z,,"{""order"": 7}",',
            "HIST-0004,InProgress,p-2,,,,,",
            "HIST-0005,Failed,p-3,Cy,,,,",
            "HIST-0006,Invalidated,,,,stolen,,",
            "hist 0007,redeemed,p-4,,2024-01-01T00:00:00Z,,,",
        ]
    ).encode()

    job = import_history(ops, code_type, content)

    assert job.status == "succeeded", job.errors
    assert job.errors == []
    assert job.summary["imported"] == 7
    codes = {c.scan_code: c for c in Code.objects.filter(batch=job.batch)}
    assert {s: c.state for s, c in codes.items()} == {
        "HIST-0001": "Inactive",
        "HIST-0002": "Available",
        "HIST-0003": "Redeemed",
        "HIST-0004": "InProgress",
        "HIST-0005": "Failed",
        "HIST-0006": "Invalidated",
        "HIST 0007": "Redeemed",
    }
    redeemed = codes["HIST-0003"]
    assert (redeemed.redeemed_by_profile_id, redeemed.redeemed_by_profile_name) == ("p-1", "Ann")
    assert redeemed.redeemed_at == at("2025-03-04T05:06:07.890Z")
    assert redeemed.custom_redemption_info == {"order": 7}
    assert codes["HIST-0002"].custom_code_info == {"sku": "A"}
    assert codes["HIST-0002"].activated_at is not None
    assert codes["HIST-0001"].activated_at is None
    assert codes["HIST 0007"].redeemed_at == at("2024-01-01T00:00:00Z")
    invalidated = codes["HIST-0006"]
    assert invalidated.invalidation_reason == "stolen" and invalidated.invalidated_at
    # An InProgress code waits on attempt 1 (replies, timeouts, retries work as usual); a
    # Failed one has a closed attempt 1 that its profile may retry.
    in_progress = Attempt.objects.get(code=codes["HIST-0004"])
    assert (in_progress.attempt, in_progress.state, in_progress.profile_id) == (
        1,
        "InProgress",
        "p-2",
    )
    assert in_progress.deadline_at > in_progress.started_at
    failed = Attempt.objects.get(code=codes["HIST-0005"])
    assert (failed.state, failed.profile_id, failed.finished_at is not None) == (
        "Failed",
        "p-3",
        True,
    )
    assert codes["HIST-0004"].current_attempt == codes["HIST-0005"].current_attempt == 1
    assert (
        state_counts(code_type)
        == row_counts(code_type)
        == {
            "Inactive": 1,
            "Available": 1,
            "InProgress": 1,
            "Redeemed": 2,
            "Invalidated": 1,
            "Failed": 1,
        }
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("BAD!,Available,,,,,,", "A scan code is"),
        ("LINE-0001,Lost,,,,,,", "codeState must be one of"),
        ("LINE-0002,Redeemed,,,2025-01-01T00:00:00Z,,,", "needs redeemedByProfileId"),
        ("LINE-0003,Redeemed,p-1,,,,,", "needs redeemedAt"),
        ("LINE-0004,Available,,,2025-01-01T00:00:00Z,,,", "Redeemed rows only"),
        ("LINE-0005,Available,p-1,,,,,", "has no redeemer"),
        ("LINE-0006,Available,,,,lost,,", "Invalidated codes only"),
        ("LINE-0007,Redeemed,p-1,,yesterday,,,", "ISO 8601"),
        ("LINE-0008,Redeemed,p-1,,2025-01-01T00:00:00Z,,[1],", "must be a JSON object"),
        ("LINE-0009,InProgress,,,,,,", "needs redeemedByProfileId"),
        ("LINE-0010,Inactive,,,,,,{bad", "customCodeInfo must be a JSON object"),
        ("LINE-0011,Inactive,,,,,,,extra", "the header names 8"),
        ("LINE-0012,Redeemed," + "p" * 129 + ",,2025-01-01T00:00:00Z,,,", "redeemedByProfileId"),
    ],
)
def test_a_bad_line_is_a_line_error_and_the_rest_imports(ops, code_type, line, message):
    content = "\n".join([PERSONAL_HEADER, line, "GOOD-0001,Available,,,,,,"]).encode()

    job = import_history(ops, code_type, content)

    assert job.status == "succeeded"
    assert [e["line"] for e in job.errors] == [2]
    assert message in job.errors[0]["message"]
    assert job.summary["invalid"] == 1
    assert list(Code.objects.filter(batch=job.batch).values_list("scan_code", flat=True)) == [
        "GOOD-0001"
    ]
    assert state_counts(code_type) == row_counts(code_type)


def test_codes_that_fold_to_one_another_or_to_a_stored_code_are_line_errors(
    ops, code_type, settings
):
    settings.JOB_BATCH_SIZE = 2  # the fold collisions cross chunk boundaries
    CodeFactory(scan_code="STORED-0001", state="Available")
    shared = SharedCodeTypeFactory(scan_code="PROMO-CODE")
    content = "\n".join(
        [
            "scanCode,codeState,redeemedByProfileId,redeemedAt",
            "FOLD-0001,Available,,",  # 2
            "F0LD 0001,Redeemed,p-1,2025-01-01T00:00:00Z",  # 3 folds to line 2 (O -> 0)
            "FOLD-OOO1,Inactive,,",  # 4 folds to line 2, next chunk
            "stored0001,Inactive,,",  # 5 folds to a stored code
            "promocode,Inactive,,",  # 6 a shared type's scan code
            "FOLD-0002,Inactive,,",  # 7
        ]
    ).encode()

    job = import_history(ops, code_type, content)

    assert sorted((e["line"], e["code"]) for e in job.errors) == [
        (3, "REDEMPTION_CODE_DUPLICATE"),
        (4, "REDEMPTION_CODE_DUPLICATE"),
        (5, "REDEMPTION_CODE_DUPLICATE"),
        (6, "REDEMPTION_CODE_DUPLICATE"),
    ]
    assert job.summary == {
        "imported": 2,
        "duplicatesInFile": 2,
        "duplicatesInDatabase": 2,
        "invalid": 0,
    }
    # Nothing merged: the first line's code is untouched by the later ones.
    first = Code.objects.get(canonical="F01D0001")
    assert (first.state, first.redeemed_by_profile_id) == ("Available", None)
    assert Code.objects.get(canonical="ST0RED0001").code_type_id != code_type.pk
    assert shared.redemption_count == CodeType.objects.get(pk=shared.pk).redemption_count


def test_a_file_without_a_header_is_refused_line_by_line(ops, code_type):
    job = import_history(ops, code_type, b"NOHD-0001,Available\nNOHD-0002,Available\n")

    assert job.status == "succeeded"
    assert [e["line"] for e in job.errors] == [1, 2]
    assert "header row" in job.errors[0]["message"]
    assert not Code.objects.filter(batch=job.batch).exists()


def test_a_shared_type_takes_one_row_per_profile_redemption_within_its_cap(ops, settings):
    settings.JOB_BATCH_SIZE = 3
    ct = SharedCodeTypeFactory(scan_code="SPRING-PROMO", max_redemptions=4)
    SharedRedemption.objects.create(
        code_type=ct,
        profile_id="old",
        state="Redeemed",
        created_at=at("2025-01-01T00:00:00Z"),
        redeemed_at=at("2025-01-01T00:00:00Z"),
        updated_at=at("2025-01-01T00:00:00Z"),
    )
    CodeType.objects.filter(pk=ct.pk).update(redemption_count=1)
    content = csv_bytes(
        [
            ["scanCode", "codeState", "profileId", "profileName", "redeemedAt"],
            ["SPRING-PROMO", "Redeemed", "p-1", "Ann", "2025-02-01T10:00:00.000Z"],  # 2
            ["", "Failed", "p-2", "", ""],  # 3 no slot held
            ["spring promo", "InProgress", "p-3", "", ""],  # 4
            ["SPRING-PROMO", "Redeemed", "p-1", "", "2025-02-02T10:00:00Z"],  # 5 p-1 again
            ["SPRING-PROMO", "Redeemed", "old", "", "2025-02-02T10:00:00Z"],  # 6 stored
            ["OTHER-CODE", "Redeemed", "p-4", "", "2025-02-02T10:00:00Z"],  # 7 other code
            ["SPRING-PROMO", "Available", "p-5", "", ""],  # 8 not a shared state
            ["SPRING-PROMO", "Redeemed", "p-6", "", "2025-02-03T10:00:00Z"],  # 9 last slot
            ["SPRING-PROMO", "Redeemed", "p-7", "", "2025-02-04T10:00:00Z"],  # 10 over the cap
            ["SPRING-PROMO", "Failed", "p-8", "", ""],  # 11 Failed holds no slot
        ]
    )

    job = import_history(ops, ct, content)

    assert job.status == "succeeded"
    assert sorted((e["line"], e["code"]) for e in job.errors) == [
        (5, "REDEMPTION_CODE_DUPLICATE"),
        (6, "REDEMPTION_CODE_DUPLICATE"),
        (7, "REDEMPTION_CODE_TYPE_MISMATCH"),
        (8, "INVALID_PARAMETER_VALUE"),
        (10, "MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED"),
    ]
    rows = {r.profile_id: r for r in SharedRedemption.objects.filter(code_type=ct)}
    assert {p: r.state for p, r in rows.items()} == {
        "old": "Redeemed",
        "p-1": "Redeemed",
        "p-2": "Failed",
        "p-3": "InProgress",
        "p-6": "Redeemed",
        "p-8": "Failed",
    }
    assert rows["p-1"].redeemed_at == at("2025-02-01T10:00:00Z")
    assert rows["p-1"].profile_name == "Ann"
    assert rows["p-1"].custom_code_info == ct.custom_code_info
    assert Attempt.objects.filter(shared__code_type=ct).count() == 3
    ct.refresh_from_db()
    assert ct.redemption_count == 4  # old, p-1, p-3, p-6
    assert state_counts(ct) == row_counts(ct)


def test_only_ops_may_import_with_preserved_state(support, viewer, ops, code_type, shared_type):
    for actor in (support, viewer):
        with pytest.raises(exc.PermissionDeniedError):
            bulk.job_import_start(
                actor=actor, code_type_name=code_type.name, upload=b"x", preserve_state=True
            )
    # A plain import still takes personal types only.
    with pytest.raises(exc.TypeMustBeSingleUseError):
        bulk.job_import_start(actor=ops, code_type_name=shared_type.name, upload=b"x")
    assert not Job.objects.exists()


def _wipe_inventory() -> None:
    """Leave the database as fresh as a new one for codes: no types, codes or redemptions."""
    Attempt.objects.all().delete()
    SharedRedemption.objects.all().delete()
    Code.objects.all().delete()
    CodeType.objects.all().delete()


def _history(code_type_name: str) -> list[tuple]:
    ct = CodeType.objects.get(name=code_type_name)
    if ct.is_shared:
        return sorted(
            SharedRedemption.objects.filter(code_type=ct).values_list(
                "profile_id",
                "profile_name",
                "state",
                "redeemed_at",
                "created_at",
                "custom_code_info",
                "custom_redemption_info",
            )
        )
    return sorted(
        Code.objects.filter(code_type=ct, is_shared_anchor=False).values_list(
            "scan_code",
            "state",
            "redeemed_by_profile_id",
            "redeemed_by_profile_name",
            "redeemed_at",
            "invalidation_reason",
            "invalidated_at",
            "activated_at",
            "created_at",
            "custom_code_info",
            "custom_redemption_info",
        )
    )


def _ms(rows: list[tuple]) -> list[tuple]:
    """Times to the millisecond, as the export writes them."""
    return [
        tuple(
            v.replace(microsecond=v.microsecond // 1000 * 1000) if isinstance(v, datetime) else v
            for v in row
        )
        for row in rows
    ]


def test_an_export_re_imports_as_it_is_into_a_fresh_database(ops, system_actor):
    personal = CodeTypeFactory(name="gift-cards")
    shared = SharedCodeTypeFactory(name="promo", scan_code="PROMO-2026", max_redemptions=10)
    bulk.codes_generate_inline(
        actor=ops, code_type_name=personal.name, quantity=3, custom_code_info={"v": 25}
    )
    when = at("2025-06-01T08:09:10.123456Z")
    CodeFactory(
        code_type=personal,
        scan_code="-SUM-0001",  # neutralised as a formula by the export, read back as it was
        canonical="SUM0001",
        state="Redeemed",
        redeemed_by_profile_id="-p,1",
        redeemed_by_profile_name='Ann "the" Buyer',
        redeemed_at=when,
        custom_redemption_info={"order": [1, 2]},
        activated_at=when,
    )
    CodeFactory(
        code_type=personal,
        scan_code="GONE-0001",
        state="Invalidated",
        invalidation_reason="stolen, reported",
        invalidated_at=when,
    )
    for profile, state in (("a", "Redeemed"), ("b", "Failed"), ("c", "Redeemed")):
        SharedRedemption.objects.create(
            code_type=shared,
            profile_id=profile,
            profile_name=profile.upper(),
            state=state,
            custom_code_info={"k": profile},
            custom_redemption_info={"r": profile},
            created_at=when,
            redeemed_at=when if state == "Redeemed" else None,
            updated_at=when,
        )
    CodeType.objects.filter(pk=shared.pk).update(redemption_count=2)
    files = {ct.name: csv_bytes(bulk.export_rows(code_type=ct)) for ct in (personal, shared)}
    before = {name: _ms(_history(name)) for name in files}
    counts_before = {name: state_counts(CodeType.objects.get(name=name)) for name in files}

    _wipe_inventory()
    CodeTypeFactory(name="gift-cards")
    SharedCodeTypeFactory(name="promo", scan_code="PROMO-2026", max_redemptions=10)
    jobs = {
        name: import_history(ops, CodeType.objects.get(name=name), content)
        for name, content in files.items()
    }

    assert {name: (j.status, j.errors) for name, j in jobs.items()} == {
        "gift-cards": ("succeeded", []),
        "promo": ("succeeded", []),
    }
    assert {name: _history(name) for name in files} == before
    assert {name: state_counts(CodeType.objects.get(name=name)) for name in files} == (
        counts_before
    )
    assert CodeType.objects.get(name="promo").redemption_count == 2


def test_a_100000_line_history_file_imports_in_a_job_with_progress(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 5_000
    states = ("Inactive", "Available", "Redeemed", "Invalidated")
    lines = ["scanCode,codeState,redeemedByProfileId,redeemedAt,invalidationReason"]
    for i in range(100_000):
        state = states[i % 4]
        redeemed = (f"p-{i}", "2025-01-01T00:00:00.000Z") if state == "Redeemed" else ("", "")
        reason = "lost" if state == "Invalidated" else ""
        lines.append(f"BIG-{i:08d},{state},{redeemed[0]},{redeemed[1]},{reason}")
    job = bulk.job_import_start(
        actor=ops,
        code_type_name=code_type.name,
        upload="\n".join(lines).encode(),
        preserve_state=True,
    )
    assert (job.status, job.done) == ("queued", 0)

    started = time.monotonic()
    bulk.run_job(job.pk)
    seconds = time.monotonic() - started

    job.refresh_from_db()
    assert job.status == "succeeded", job.errors[:3]
    assert job.total == job.done == 100_001
    assert job.summary["imported"] == 100_000
    assert (
        state_counts(code_type)
        == row_counts(code_type)
        == {
            "Inactive": 25_000,
            "Available": 25_000,
            "InProgress": 0,
            "Redeemed": 25_000,
            "Invalidated": 25_000,
            "Failed": 0,
        }
    )
    print(f"100,000-line history import: {seconds:.1f} s")


def _manage(tmp_path, *argv: str) -> str:
    """Run manage.py against a fresh SQLite database of its own (never the test's)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": "",
        "SQLITE_PATH": str(tmp_path / "fresh.sqlite3"),
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "PORTAL_MEDIA_ROOT": str(tmp_path / "media"),
    }
    return manage(env, *argv)


def _rows(path) -> list[list[str]]:
    """An export's rows without the batch column (a new batch holds the imported codes)."""
    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    batch = header.index("batchId")
    return sorted([c for i, c in enumerate(r) if i != batch] for r in rows)


def test_an_export_imports_into_another_fresh_database_with_the_same_history(ops, tmp_path):
    personal = CodeTypeFactory(name="gift-cards")
    shared = SharedCodeTypeFactory(name="promo", scan_code="PROMO-2027")
    when = at("2025-06-01T08:09:10.123Z")
    bulk.codes_generate_inline(actor=ops, code_type_name=personal.name, quantity=4)
    for i, state in enumerate(("Redeemed", "InProgress", "Failed", "Invalidated", "Available")):
        holder = {"redeemed_by_profile_id": f"p-{i}", "redeemed_by_profile_name": f"P {i}"}
        CodeFactory(
            code_type=personal,
            scan_code=f"MOVE-000{i}",
            state=state,
            redeemed_at=when if state == "Redeemed" else None,
            invalidation_reason="stolen" if state == "Invalidated" else None,
            invalidated_at=when if state == "Invalidated" else None,
            activated_at=when if state != "Invalidated" else None,
            custom_redemption_info={"n": i},
            **(holder if state in ("Redeemed", "InProgress", "Failed") else {}),
        )
    for profile in ("a", "b"):
        SharedRedemption.objects.create(
            code_type=shared,
            profile_id=profile,
            state="Redeemed",
            created_at=when,
            redeemed_at=when,
            updated_at=when,
        )
    exported = {}
    for ct in (personal, shared):
        exported[ct.name] = tmp_path / f"{ct.name}.csv"
        exported[ct.name].write_bytes(csv_bytes(bulk.export_rows(code_type=ct)))

    _manage(tmp_path, "migrate", "--verbosity", "0")
    _manage(
        tmp_path,
        "shell",
        "-c",
        "from redemption.actors import Actor; from redemption import services; "
        "a = Actor.system('test'); "
        "services.code_type_create(actor=a, name='gift-cards'); "
        "services.code_type_create(actor=a, name='promo', use_type='MULTI', "
        "scan_code='PROMO-2027')",
    )
    for name, path in exported.items():
        report = _manage(tmp_path, "import_codes", name, str(path), "--preserve-state", "--wait")
        assert "0 invalid lines" in report and "0 already in the database" in report
        _manage(tmp_path, "export_codes", name, "-o", str(tmp_path / f"{name}-again.csv"))

    for name, path in exported.items():
        assert _rows(tmp_path / f"{name}-again.csv") == _rows(path)
    assert len(_rows(exported["gift-cards"])) == 9
