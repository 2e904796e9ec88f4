"""Ops in a real browser: create a type, generate 5,000 codes, export, invalidate, reset, delete."""

import re

import pytest
from playwright.sync_api import expect

from redemption.models import AuditEvent, Code, CodeType, Job, State
from redemption.services import bulk
from tests.e2e.helpers import make_type_with_job, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

TYPE = "spring-2027"


def _job_id(page) -> str:
    match = re.search(r"/jobs/([0-9a-f-]{36})/$", page.url)
    assert match, page.url
    return match.group(1)


def _run_and_watch(page, screenshot=None, shot: str | None = None) -> None:
    """Run the job the page shows (as the worker would) and wait for the page to say so."""
    if screenshot and shot:
        screenshot(shot)
    bulk.run_job(_job_id(page))
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=15_000)


def _download_lines(page, link) -> list[str]:
    with page.expect_download() as info:
        link.click()
    return info.value.path().read_text().splitlines()


def test_ops_runs_a_campaign_from_creation_to_deletion(page, live_server, ops_user, screenshot):
    page.set_viewport_size({"width": 1360, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live_server.url, ops_user)
    expect(page.get_by_test_id("current-role")).to_have_text("Ops")
    screenshot("dashboard-empty")

    # Empty inventory says what to do next; ops creates a type with fulfilment settings.
    page.get_by_role("link", name="Design › Marketplace › Redemption Codes").click()
    expect(page.get_by_role("heading", name="No code types yet")).to_be_visible()
    page.get_by_role("link", name="Create the first code type").click()
    page.get_by_label("Code type name").fill(TYPE)
    page.get_by_label("Description").fill("Spring gift cards")
    page.get_by_label("Custom code info (JSON object)").fill('{"sku": "GC-50"}')
    page.get_by_label("Fulfilment webhook URL").fill("ftp://not-a-web-hook")
    page.get_by_role("button", name="Create code type").click()
    # A bad field keeps the rest of the input and says what is wrong.
    expect(page.get_by_text("Please correct the fields marked below.")).to_be_visible()
    expect(page.get_by_label("Description")).to_have_value("Spring gift cards")
    screenshot("code-type-form-errors")
    page.get_by_label("Fulfilment webhook URL").fill("https://shop.example/fulfil")
    page.get_by_label("Max retries").fill("2")
    page.get_by_label("Timeout (seconds)").fill("15")
    page.get_by_role("button", name="Create code type").click()
    expect(page.get_by_text(f"Code type “{TYPE}” created.")).to_be_visible()
    expect(page.get_by_text("https://shop.example/fulfil")).to_be_visible()

    # Generate 5,000 codes and watch the job finish.
    page.locator(".actions").get_by_role("link", name="Generate codes").click()
    page.get_by_label("Quantity").fill("5000")
    page.get_by_label("Initial state").select_option("Available")
    page.get_by_role("button", name="Start generating").click()
    expect(page.get_by_text(f"Generating 5,000 codes for “{TYPE}”.")).to_be_visible()
    _run_and_watch(page, screenshot, "job-queued")
    expect(page.locator(".progress-text")).to_contain_text("100% · 5,000 of 5,000")
    screenshot("job-succeeded")
    lines = _download_lines(page, page.get_by_role("link", name="Download codes (CSV)"))
    assert lines[0] == "scanCode" and len(lines) == 5001
    assert Code.objects.filter(code_type__name=TYPE, state=State.AVAILABLE).count() == 5000

    # The type page shows the counts with separators; export streams every code.
    page.get_by_role("link", name=f"Open “{TYPE}”").click()
    expect(page.locator('[data-state="Available"]')).to_have_text("5,000")
    expect(page.locator("#codes-title + p, .table-container").first).to_be_visible()
    screenshot("code-type-page")
    exported = _download_lines(page, page.get_by_role("link", name="Export CSV"))
    assert exported[0].startswith("scanCode,codeState") and len(exported) == 5001

    # Invalidate the batch with a reason.
    page.get_by_role("link", name="Invalidate…").click()
    expect(page.get_by_test_id("open-count")).to_have_text("5,000")
    page.get_by_label("Reason").fill("Printed with the wrong artwork")
    page.get_by_role("button", name="Invalidate 5,000 codes").click()
    expect(page.get_by_text(re.compile(r"Invalidated 5,000 codes of batch"))).to_be_visible()
    expect(page.locator('[data-state="Invalidated"]')).to_have_text("5,000")

    # Reset: a wrong name is refused, the right one starts a job.
    page.get_by_role("link", name="Reset codes…").click()
    expect(page.get_by_test_id("count-Invalidated")).to_have_text("5,000")
    expect(page.locator("#state-Redeemed")).not_to_be_checked()
    expect(page.locator("#state-InProgress")).not_to_be_checked()
    page.get_by_label("Reset to").select_option("Available")
    page.locator("#id_confirm_name").fill(TYPE.upper())
    page.get_by_role("button", name="Reset codes").click()
    expect(
        page.get_by_text("That is not this code type's name; nothing was changed.")
    ).to_be_visible()
    screenshot("reset-confirm-refused")
    assert not Job.objects.filter(kind=Job.Kind.RESET_CODES).exists()
    page.locator("#id_confirm_name").fill(TYPE)
    page.get_by_role("button", name="Reset codes").click()
    _run_and_watch(page)
    assert Code.objects.filter(code_type__name=TYPE, state=State.AVAILABLE).count() == 5000

    # Delete through the same confirm flow.
    page.get_by_role("link", name=f"Open “{TYPE}”").click()
    page.get_by_role("link", name="Delete codes…").click()
    screenshot("delete-confirm")
    page.locator("#id_confirm_name").fill("spring")
    page.get_by_role("button", name="Delete codes").click()
    expect(
        page.get_by_text("That is not this code type's name; nothing was changed.")
    ).to_be_visible()
    assert Code.objects.filter(code_type__name=TYPE).count() == 5000
    page.locator("#id_confirm_name").fill(TYPE)
    page.get_by_role("button", name="Delete codes").click()
    _run_and_watch(page)
    page.get_by_role("link", name=f"Open “{TYPE}”").click()
    expect(page.locator('[data-state="Total"]')).to_have_text("0")
    expect(page.get_by_text("This type has no codes yet.")).to_be_visible()

    # Every step left an audit event.
    page.get_by_role("link", name="Audit log").click()
    for action in ("code_type.create", "codes.generate", "batch.invalidate", "codes.reset_all"):
        expect(page.get_by_role("cell", name=action, exact=True).first).to_be_visible()
    screenshot("audit-log")
    assert dialogs == []


def test_the_job_page_works_without_javascript(browser, live_server, ops_user, screenshot):
    job = make_type_with_job(ops_user)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, ops_user)
        page.goto(f"{live_server.url}/jobs/{job.pk}/")
        expect(page.get_by_test_id("job-status")).to_have_text("queued")
        bulk.run_job(job.pk)
        page.get_by_test_id("refresh-link").click()
        expect(page.get_by_test_id("job-status")).to_have_text("succeeded")
        expect(page.get_by_role("link", name="Download codes (CSV)")).to_be_visible()
    finally:
        context.close()


def test_ops_reveals_the_masked_webhook_secret_and_sees_a_rotated_one_once(
    page, live_server, ops_user
):
    job = make_type_with_job(ops_user)
    secret = CodeType.objects.get(name=job.code_type_name).webhook_secret
    edit = f"{live_server.url}/design/redemption-codes/{job.code_type_name}/edit/"
    sign_in(page, live_server.url, ops_user)
    page.goto(edit)
    masked = page.get_by_test_id("webhook-secret-masked").text_content() or ""
    assert secret not in masked and masked.startswith(secret[:10])

    page.get_by_role("button", name="Reveal").click()
    expect(page.get_by_test_id("webhook-secret")).to_have_text(secret)
    assert AuditEvent.objects.filter(action="code_type.reveal_secret").count() == 1

    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_text("A new webhook signing secret is in force")).to_be_visible()
    rotated = CodeType.objects.get(name=job.code_type_name).webhook_secret
    assert rotated != secret
    expect(page.get_by_test_id("webhook-secret")).to_have_text(rotated)
    expect(page.get_by_test_id("previous-secret")).to_be_visible()
    page.goto(edit)
    expect(page.get_by_test_id("webhook-secret")).to_have_count(0)
    expect(page.get_by_test_id("webhook-secret-masked")).to_be_visible()
