"""GET /metrics: who may scrape it, what the services record, and how ended processes fold in.

The multi-process figures (two gunicorn workers and a db_worker) are proven against real
processes in tests/test_metrics_processes.py; these tests run in the test process.
"""

import ipaddress
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from redemption import exceptions as exc
from redemption import metrics_export
from redemption.actors import Actor, Profile
from redemption.models import Job, State
from redemption.services import bulk, redeem
from tests.factories import CodeFactory, CodeTypeFactory
from tests.fulfilment import ACCEPTED, DONE, add_code, make_type
from tests.processes import ROOT

TOKEN = "scrape-token-0123456789"
SYSTEM = Actor.system("test")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape() -> Samples:
    return parse(metrics_export.exposition().decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- who may scrape ---------------------------------------------------------------------------


def test_metrics_is_an_ordinary_404_when_neither_token_nor_addresses_are_set(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []

    scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    unknown = client.get("/no-such-page")

    assert scraped.status_code == unknown.status_code == 404
    assert scraped.content == unknown.content
    assert client.post("/metrics").status_code == 404


def test_metrics_answers_the_bearer_token_and_nothing_else(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []

    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert allowed.status_code == 200
    assert allowed["Content-Type"].startswith("text/plain; version=")
    assert allowed["Cache-Control"] == "no-store"
    assert client.get("/metrics", HTTP_AUTHORIZATION="bearer " + TOKEN).status_code == 200
    for wrong in ("", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"):
        assert client.get("/metrics", HTTP_AUTHORIZATION=wrong).status_code == 404, wrong
    assert client.get("/metrics").status_code == 404
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.parametrize(
    ("allowed", "remote", "answers"),
    [
        ("10.1.2.3", "10.1.2.3", True),
        ("10.1.2.3", "10.1.2.4", False),
        ("10.0.0.0/8, 192.168.1.0/24", "192.168.1.77", True),
        ("10.0.0.0/8", "::ffff:10.9.9.9", True),
        ("2001:db8::/32", "2001:db8::5", True),
        ("2001:db8::/32", "10.0.0.1", False),
        ("10.0.0.0/8", "not-an-address", False),
    ],
)
def test_metrics_answers_callers_whose_address_is_allowed(
    client, settings, allowed, remote, answers
):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = [
        ipaddress.ip_network(item.strip(), strict=False) for item in allowed.split(",")
    ]

    response = client.get("/metrics", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR="10.1.2.3")

    assert response.status_code == (200 if answers else 404)


def test_a_bad_metrics_address_list_stops_the_start_with_a_clear_error():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "portal.settings_test",
            "METRICS_ALLOWED_IPS": "10.0.0.0/8,10.0.0.300",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "METRICS_ALLOWED_IPS" in result.stderr and "10.0.0.300" in result.stderr


# --- what the services record -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redeems_are_counted_by_outcome_and_reason(webhook):
    ct = CodeTypeFactory()
    codes = [CodeFactory(code_type=ct, state=State.AVAILABLE) for _ in range(3)]
    webhook.behaviour = lambda _r: (200, ACCEPTED)
    pending = add_code(make_type(webhook.url, is_async=True))
    before = scrape()

    for code in codes:
        redeem(actor=SYSTEM, profile=Profile("p-1"), scan_code=code.scan_code)
    redeem(actor=SYSTEM, profile=Profile("p-1"), scan_code=pending.scan_code)
    for profile, scan in [("p-2", codes[0].scan_code), ("p-1", codes[1].scan_code)]:
        with pytest.raises(exc.RedemptionError):
            redeem(actor=SYSTEM, profile=Profile(profile), scan_code=scan)
    with pytest.raises(exc.CodeNotFoundError):
        redeem(actor=SYSTEM, profile=Profile("p-1"), scan_code="NOPE-NOPE-NOPE")

    after = scrape()
    name = "redemption_redeems_total"
    assert grew(before, after, name, outcome="ok", reason="") == 3
    assert grew(before, after, name, outcome="in_progress", reason="") == 1
    assert grew(before, after, name, outcome="error", reason=exc.RedeemedByOtherError.code) == 1
    assert grew(before, after, name, outcome="error", reason=exc.RedeemedBySelfError.code) == 1
    assert grew(before, after, name, outcome="error", reason=exc.CodeNotFoundError.code) == 1


@pytest.mark.django_db(transaction=True)
def test_webhook_calls_are_counted_by_result_with_their_duration(webhook):
    before = scrape()
    webhook.behaviour = lambda _r: (200, DONE)
    redeem(
        actor=SYSTEM, profile=Profile("p-1"), scan_code=add_code(make_type(webhook.url)).scan_code
    )
    webhook.behaviour = lambda _r: (200, {"success": False, "errorMsg": "out of stock"})
    with pytest.raises(exc.RedemptionFailedError):
        redeem(
            actor=SYSTEM,
            profile=Profile("p-1"),
            scan_code=add_code(make_type(webhook.url)).scan_code,
        )
    webhook.behaviour = lambda _r: (500, b"boom")
    with pytest.raises(exc.RedemptionError):
        redeem(
            actor=SYSTEM,
            profile=Profile("p-1"),
            scan_code=add_code(make_type(webhook.url)).scan_code,
        )

    after = scrape()
    calls, seconds = "redemption_webhook_calls_total", "redemption_webhook_call_duration_seconds"
    for result in ("success", "failure", "transport_error"):
        assert grew(before, after, calls, result=result) == 1, result
        assert grew(before, after, seconds + "_count", result=result) == 1, result
        assert grew(before, after, seconds + "_bucket", result=result, le="+Inf") == 1, result
    assert grew(before, after, seconds + "_sum", result="success") > 0


@pytest.mark.django_db(transaction=True)
def test_jobs_are_counted_by_kind_and_status(ops_user):
    ct = CodeTypeFactory()
    before = scrape()

    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=5)
    bulk.run_job(job.pk)

    after = scrape()
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    for status in ("queued", "running", "succeeded"):
        assert grew(before, after, "redemption_jobs_total", kind="generate", status=status) == 1
    assert grew(before, after, "redemption_jobs_total", kind="generate", status="failed") == 0


@pytest.mark.django_db
def test_rate_limit_refusals_are_counted_by_limit(settings, client):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 2
    settings.AXES_FAILURE_LIMIT = 1
    User.objects.create_user("locked-out", password="pw-locked-out-123!")
    before = scrape()

    for _ in range(3):
        with pytest.raises(exc.RedemptionError):
            redeem(actor=SYSTEM, profile=Profile("p-guess"), scan_code="GUESS-GUESS-0001")
    for _ in range(2):
        client.post("/accounts/login/", {"username": "locked-out", "password": "wrong"})

    after = scrape()
    refusals = "redemption_rate_limit_refusals_total"
    assert grew(before, after, refusals, limit="redeem_profile") == 1
    assert grew(before, after, refusals, limit="sign_in") == 1
    assert (
        grew(
            before,
            after,
            "redemption_redeems_total",
            outcome="error",
            reason=exc.MaxFailedExceededError.code,
        )
        == 1
    )


# --- processes that end -----------------------------------------------------------------------


def _write(directory, name: str, values: dict[tuple[str, str], float]) -> None:
    """A file as prometheus_client writes it for one process: counter samples by (reason)."""
    store = MmapedDict(str(directory / name))
    for (outcome, reason), amount in values.items():
        key = mmap_key(
            "redemption_redeems",
            "redemption_redeems_total",
            ["outcome", "reason"],
            [outcome, reason],
            "Redeem calls",
        )
        store.write_value(key, amount, 0.0)
    store.close()


def _ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_ended_process_is_folded_into_the_archive_and_the_totals_stay(tmp_path):
    ok, bad = ("ok", ""), ("error", "REDEMPTION_CODE_NOT_FOUND")
    live, ended, gone = (
        subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE),
        _ended_pid(),
        _ended_pid(),
    )
    try:
        _write(tmp_path, f"counter_{live.pid}.db", {ok: 5})
        _write(tmp_path, f"counter_{ended}.db", {ok: 3, bad: 2})
        _write(tmp_path, f"counter_{gone}.db", {ok: 1})
        first = parse(metrics_export.exposition(tmp_path).decode())

        # When a scrape finds ended processes, their files join the archive.
        assert sorted(p.name for p in tmp_path.glob("*.db")) == sorted(
            ["counter_archive.db", f"counter_{live.pid}.db"]
        )
        # And a web worker reported by gunicorn is folded at once, whatever it wrote.
        _write(tmp_path, "counter_999999999.db", {bad: 4})
        metrics_export.process_exited(999999999, tmp_path)
        second = parse(metrics_export.exposition(tmp_path).decode())
    finally:
        live.communicate(b"\n")

    name = "redemption_redeems_total"
    assert value(first, name, outcome="ok", reason="") == 9
    assert value(first, name, outcome="error", reason="REDEMPTION_CODE_NOT_FOUND") == 2
    assert value(second, name, outcome="ok", reason="") == 9
    assert value(second, name, outcome="error", reason="REDEMPTION_CODE_NOT_FOUND") == 6
    assert not (tmp_path / "counter_999999999.db").exists()
