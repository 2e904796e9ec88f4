"""Support in a real browser: look a code up by any spelling, act on it, see a profile's codes."""

import pytest
from playwright.sync_api import expect

from redemption.models import Code, State
from tests.e2e.helpers import populate, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_support_looks_up_activates_and_invalidates_a_code(
    page, live_server, support_user, screenshot
):
    data = populate()
    code = data["codes"][0]
    Code.objects.filter(pk=code.pk).update(state=State.INACTIVE)
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, support_user)

    page.get_by_role("link", name="Global Monitoring › Redemption Codes").click()
    screenshot("lookup")
    page.get_by_label("Scan code").fill(code.scan_code.lower().replace("-", ""))
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("scan-code")).to_have_text(code.scan_code)
    expect(page.get_by_test_id("code-state")).to_have_text("Inactive")
    expect(page.get_by_role("button", name="Copy").first).to_be_visible()

    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text(f"{code.scan_code} is now Available.")).to_be_visible()
    expect(page.get_by_test_id("code-state")).to_have_text("Available")

    page.get_by_label("Invalidation reason (optional)").fill("Reported stolen by the shop")
    page.get_by_role("button", name="Invalidate").click()
    expect(page.get_by_text(f"{code.scan_code} has been invalidated.")).to_be_visible()
    expect(page.get_by_test_id("code-state")).to_have_text("Invalidated")
    expect(page.get_by_test_id("invalidation-reason")).to_have_text("Reported stolen by the shop")
    expect(page.get_by_role("cell", name="code.invalidate")).to_be_visible()
    screenshot("code-detail")
    code.refresh_from_db()
    assert (code.state, code.invalidation_reason) == (
        State.INVALIDATED,
        "Reported stolen by the shop",
    )

    # A mistyped code is reported on the form, and the typed text stays.
    page.get_by_role("link", name="Global Monitoring › Redemption Codes").click()
    page.get_by_label("Scan code").fill("nope-nope-nope")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_text("No redemption code matches that scan code.")).to_be_visible()
    expect(page.get_by_label("Scan code")).to_have_value("nope-nope-nope")

    # Get a test code: the first Failed code of the type.
    page.get_by_label("Code type").select_option("xmas-2026")
    page.get_by_label("State").select_option("Failed")
    page.get_by_role("button", name="Get test code").click()
    expect(page.get_by_test_id("scan-code")).to_have_text(data["failed"].scan_code)
    expect(page.get_by_role("cell", name="REDEMPTION_FAILED")).to_be_visible()


def test_support_lists_what_a_profile_redeemed(page, live_server, support_user, screenshot):
    data = populate()
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, support_user)
    page.get_by_role("link", name="User Monitoring › Redemption Codes").click()
    page.get_by_label("Profile id").fill("p-42")
    page.get_by_role("button", name="Show codes").click()
    expect(page.get_by_test_id("profile-id")).to_have_text("p-42")
    records = page.get_by_role("table").first
    expect(records.get_by_role("link", name=data["redeemed"].scan_code)).to_be_visible()
    expect(records.get_by_role("link", name=data["failed"].scan_code)).to_be_visible()
    expect(records.get_by_role("link", name="FREESTUFF", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="REDEMPTION_FAILED")).to_be_visible()
    # Deleting a shared redemption is for Ops only: Support does not get the button.
    expect(page.get_by_role("link", name="Delete redemption…")).to_have_count(0)
    screenshot("user-monitoring")
