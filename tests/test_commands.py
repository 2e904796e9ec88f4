"""Management commands: thin CLI entry points over the bulk services."""

import csv
import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django_tasks_db.models import DBTaskResult

from redemption import codes, permissions
from redemption.models import (
    STATE_ORDER,
    Attempt,
    AuditEvent,
    Code,
    CodeType,
    Job,
    SharedRedemption,
)
from tests.factories import CodeFactory, CodeTypeFactory


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- generate_codes / import_codes / export_codes ------------------------------------------------


def test_generate_codes_with_wait_runs_the_job_and_prints_its_id(code_type):
    out, _ = run(
        "generate_codes",
        code_type.name,
        "40",
        "--state=Available",
        "--prefix=cli",
        "--length=10",
        "--check",
        "--custom-info",
        '{"source": "cli"}',
        "--wait",
    )

    job_id = out.splitlines()[0]
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded"
    assert "Generated 40 codes" in out
    batch_codes = Code.objects.filter(batch=job.batch)
    assert batch_codes.count() == 40
    for code in batch_codes:
        assert code.scan_code.startswith("CLI-")
        assert code.canonical.startswith("C11")  # I reads as 1 in the canonical form
        assert codes.has_valid_check(code.canonical[3:])
        assert code.state == "Available"
        assert code.custom_code_info == {"source": "cli"}
    assert job.created_by == "cli:generate_codes"


def test_generate_codes_without_wait_only_queues_for_the_worker(
    code_type, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        out, err = run("generate_codes", code_type.name, "5")

    job = Job.objects.get(pk=out.strip())
    assert job.status == "queued"
    assert "db_worker" in err
    assert DBTaskResult.objects.filter(task_path="redemption.tasks.run_job_task").count() == 1


def test_generate_codes_runs_in_process_when_no_worker_would(code_type, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}

    out, _ = run("generate_codes", code_type.name, "5")

    assert Job.objects.get(pk=out.splitlines()[0]).status == "succeeded"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0"], "INVALID_PARAMETER_VALUE"),
        (["5", "--length=7"], "algorithmDetails.length"),
        (["5", "--custom-info=nope"], "--custom-info"),
    ],
)
def test_generate_codes_reports_refusals(code_type, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("generate_codes", code_type.name, *args)
    assert not Job.objects.exists()


def test_generate_codes_for_an_unknown_type_fails(db):
    with pytest.raises(CommandError, match="REDEMPTION_CODE_TYPE_NOT_FOUND"):
        run("generate_codes", "ghost", "5")


def test_import_codes_reports_the_summary_and_the_refused_lines(code_type, tmp_path):
    CodeFactory(scan_code="KNOWN-0001")
    path = tmp_path / "codes.csv"
    path.write_text("scanCode,codeState\nNEW-0001,Available\nNEW-0002\nKNOWN-0001\nbad\n")

    out, err = run("import_codes", code_type.name, str(path), "--wait")

    job = Job.objects.get(pk=out.splitlines()[0])
    assert job.status == "succeeded"
    assert "Imported 2 codes" in out
    assert "1 already in the database" in out
    assert "1 invalid lines" in out
    assert "line 4: KNOWN-0001 REDEMPTION_CODE_DUPLICATE" in err
    assert "line 5: BAD INVALID_SCAN_CODE" in err
    assert Code.objects.get(canonical="NEW0001").state == "Available"


def test_import_codes_of_a_missing_file_fails(code_type, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_codes", code_type.name, str(tmp_path / "nope.csv"))


def test_export_codes_writes_csv_to_stdout_or_a_file(code_type, tmp_path):
    CodeFactory(code_type=code_type, scan_code="AVAIL-0001", state="Available")
    CodeFactory(code_type=code_type, scan_code="INACT-0001", state="Inactive")

    out, _ = run("export_codes", code_type.name, "--state=Available")
    target = tmp_path / "all.csv"
    _, err = run("export_codes", code_type.name, "-o", str(target))

    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["scanCode", "codeState", "codeType"]
    assert [r[0] for r in rows[1:]] == ["AVAIL-0001"]
    with target.open(newline="") as fh:
        assert sorted(r[0] for r in list(csv.reader(fh))[1:]) == ["AVAIL-0001", "INACT-0001"]
    assert "Wrote 2 codes" in err


def test_export_codes_refuses_an_unknown_type(db):
    with pytest.raises(CommandError, match="REDEMPTION_CODE_TYPE_NOT_FOUND"):
        run("export_codes", "ghost")


# --- staff users ---------------------------------------------------------------------------------


def test_create_staff_user_assigns_the_role_and_prints_a_generated_password(db):
    out, _ = run("create_staff_user", "olga", "--role=Ops")

    user = User.objects.get(username="olga")
    password = re.search(r"Password: (\S+)", out).group(1)
    assert user.check_password(password)
    assert list(user.groups.values_list("name", flat=True)) == ["Ops"]
    assert permissions.role_name(user) == "Ops"
    assert not user.is_superuser
    assert AuditEvent.objects.filter(action="staff_user.create", target_id=str(user.pk)).exists()


def test_create_staff_user_updates_an_existing_login_to_one_role(db):
    run("create_staff_user", "sam", "--role=Viewer")

    out, _ = run("create_staff_user", "sam", "--role=Support", "--password=Tricky-Horse-42!")

    user = User.objects.get(username="sam")
    assert list(user.groups.values_list("name", flat=True)) == ["Support"]
    assert user.check_password("Tricky-Horse-42!")
    assert "Password:" not in out
    assert "Updated" in out


def test_create_staff_user_admin_is_a_superuser(db):
    run("create_staff_user", "root", "--role=admin")

    user = User.objects.get(username="root")
    assert user.is_superuser
    assert user.is_staff
    assert permissions.is_admin(user)


def test_create_staff_user_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="Password refused"):
        run("create_staff_user", "weak", "--role=Ops", "--password=123")
    assert not User.objects.filter(username="weak").exists()


# --- sweep ----------------------------------------------------------------------------------------


def test_sweep_runs_once_and_schedule_queues_nothing(db, settings):
    settings.SWEEP_INTERVAL_SECONDS = 60
    out, _ = run("sweep")
    assert "Swept 0" in out

    scheduled, _ = run("sweep", "--schedule")

    # Every db_worker runs the periodic work; old scripts that still pass --schedule are told.
    assert "db_worker" in scheduled
    assert "every 60 s" in scheduled
    assert not DBTaskResult.objects.filter(task_path="redemption.tasks.sweep_timeouts_task")


# --- load_demo_data ------------------------------------------------------------------------------


def _inventory() -> dict[str, int]:
    return {
        "types": CodeType.objects.count(),
        "codes": Code.objects.count(),
        "shared": SharedRedemption.objects.count(),
        "attempts": Attempt.objects.count(),
        "users": User.objects.count(),
    }


def _logins(out: str) -> dict[str, str]:
    return dict(re.findall(r"\|\s+(admin|ops|support|viewer)\s+/ (\S+)", out))


def test_load_demo_data_is_idempotent_and_prints_fresh_logins(db):
    first, _ = run("load_demo_data")
    after_first = _inventory()

    second, _ = run("load_demo_data", "--url=http://localhost:9000/")

    assert _inventory() == after_first
    logins_first, logins_second = _logins(first), _logins(second)
    assert set(logins_second) == {"admin", "ops", "support", "viewer"}
    assert f"Sign in at http://localhost:9000/ as admin / {logins_second['admin']}" in second
    for username, password in logins_second.items():
        user = User.objects.get(username=username)
        assert user.check_password(password)
        assert password != logins_first[username]
    assert permissions.role_name(User.objects.get(username="ops")) == "Ops"
    assert permissions.role_name(User.objects.get(username="support")) == "Support"
    assert permissions.role_name(User.objects.get(username="viewer")) == "Viewer"
    assert permissions.is_admin(User.objects.get(username="admin"))


def test_demo_data_covers_every_state_and_both_kinds(db):
    run("load_demo_data")

    personal = Code.objects.filter(is_shared_anchor=False)
    for state in STATE_ORDER:
        assert personal.filter(state=state).count() >= 500, state
    assert set(CodeType.objects.values_list("name", "use_type")) == {
        ("xmas-2026", "SINGLE"),
        ("retail-cards", "SINGLE"),
        ("influencer-jan", "SINGLE"),
        ("FREESTUFF", "MULTI"),
        ("launch-week", "MULTI"),
    }
    freestuff = CodeType.objects.get(name="FREESTUFF")
    assert freestuff.scan_code == "FREESTUFF"
    assert freestuff.max_redemptions == 500
    assert freestuff.valid_start < freestuff.valid_end
    for ct in CodeType.objects.filter(use_type="MULTI"):
        held = SharedRedemption.objects.filter(code_type=ct, state__in=["Redeemed", "InProgress"])
        assert ct.redemption_count == held.count() > 0
    # Every InProgress/Failed record has its current attempt, in the same state.
    open_codes = personal.filter(state__in=["InProgress", "Failed"])
    matching = Attempt.objects.filter(
        code__in=open_codes,
        attempt=F("code__current_attempt"),
        state=F("code__state"),
        profile_id=F("code__redeemed_by_profile_id"),
    )
    assert matching.count() == open_codes.count()
    assert not personal.filter(state="Redeemed", redeemed_at__isnull=True).exists()


def test_demo_data_leaves_other_code_types_alone(db):
    mine = CodeTypeFactory(name="my-own-type")
    CodeFactory(code_type=mine)

    run("load_demo_data")

    assert Code.objects.filter(code_type=mine).count() == 1
