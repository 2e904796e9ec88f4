"""User Monitoring and the dashboard chart in a real browser: find a profile by the start of
its name, filter by type, open one shared redemption, delete it (Ops); the chart per type."""

import csv
import io

import pytest
from playwright.sync_api import expect

from redemption.actors import Actor, Profile
from redemption.models import AuditEvent, SharedRedemption
from redemption.services import redeem
from tests.e2e.helpers import HOSTILE, populate, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _redeem_shared(profile_id: str, name: str) -> SharedRedemption:
    redeem(
        actor=Actor.system("test"),
        profile=Profile(profile_id, name),
        scan_code="FREESTUFF",
        custom_redemption_info={"device": "ios", "note": HOSTILE},
    )
    return SharedRedemption.objects.get(profile_id=profile_id)


def test_ops_finds_a_profile_by_name_and_deletes_its_shared_redemption(
    page, live_server, ops_user, screenshot
):
    populate()
    _redeem_shared("p-900", "Zelda Quinn")
    page.set_viewport_size({"width": 1360, "height": 900})
    xss: list[str] = []
    page.on("dialog", lambda d: (xss.append(d.message), d.dismiss()))
    sign_in(page, live_server.url, ops_user)

    page.get_by_role("link", name="User Monitoring › Redemption Codes").click()
    page.get_by_label("Profile id or name").fill("zel")
    page.get_by_role("button", name="Show codes").click()
    # One profile starts with "zel": its page opens at once.
    expect(page.get_by_test_id("profile-id")).to_have_text("p-900")
    expect(page.get_by_test_id("profile-name")).to_have_text("Zelda Quinn")
    expect(page.locator("pre.cell-json").first).to_contain_text('"device": "ios"')

    page.get_by_label("Code type").select_option("freestuff")
    page.get_by_role("button", name="Show codes").click()
    expect(page.get_by_test_id("profile-code-type")).to_have_text("freestuff")
    page.get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="Shared redemption of FREESTUFF")).to_be_visible()
    # Shown as text (JSON-escaped quotes and all), never run.
    expect(page.locator("#custom-redemption-info")).to_contain_text(
        '"note": "<script>window.__xss=1</script>'
    )
    expect(page.get_by_role("cell", name="shared.redeem", exact=True)).to_be_visible()
    screenshot("shared-redemption-detail")

    page.get_by_role("link", name="Delete redemption…").click()
    page.get_by_role("button", name="Delete redemption").click()
    expect(page.get_by_text("that profile may redeem it again")).to_be_visible()
    assert not SharedRedemption.objects.filter(profile_id="p-900").exists()
    assert AuditEvent.objects.filter(action="shared_redemption.delete", profile_id="p-900").exists()
    assert page.evaluate("window.__xss") is None and xss == []


def test_a_search_with_several_matches_lists_them_and_support_reads_without_delete(
    page, live_server, support_user
):
    populate()
    _redeem_shared("p-901", "Zed One")
    _redeem_shared("p-902", "Zed Two")
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, support_user)
    page.goto(live_server.url + "/users/redemption-codes/")
    page.get_by_label("Profile id or name").fill("ZED")
    page.get_by_role("button", name="Show codes").click()
    matches = page.get_by_test_id("profile-matches")
    expect(matches.get_by_role("link")).to_have_count(2)
    matches.get_by_role("link", name="p-902").click()
    expect(page.get_by_test_id("profile-id")).to_have_text("p-902")
    page.get_by_role("link", name="Details").click()
    expect(page.get_by_text("Deleting a shared redemption needs the Ops role.")).to_be_visible()
    expect(page.get_by_role("link", name="Delete redemption…")).to_have_count(0)

    # "Get test code" of a shared type: its one scan code, whatever state is chosen.
    page.get_by_role("link", name="Global Monitoring › Redemption Codes").click()
    page.get_by_label("Code type").select_option("freestuff")
    page.get_by_label("State").select_option("Inactive")
    page.get_by_role("button", name="Get test code").click()
    expect(page.get_by_text("Test code of the shared type “freestuff”: FREESTUFF")).to_be_visible()
    expect(page.get_by_text("It is redeemable now.")).to_be_visible()


def test_the_dashboard_chart_counts_one_type_and_downloads_its_numbers(
    page, live_server, viewer_user
):
    populate()
    _redeem_shared("p-903", "Ann")
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, viewer_user)
    expect(page.get_by_test_id("chart-summary")).to_contain_text("1 in total")
    page.get_by_label("Code type").select_option("xmas-2026")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("chart-summary")).to_contain_text("xmas-2026")
    expect(page.get_by_test_id("chart-summary")).to_contain_text("0 in total")
    page.get_by_label("Code type").select_option("freestuff")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("svg.chart rect.bar:not(.zero)")).to_have_count(1)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(info.value.path().read_text())))
    assert rows[0] == ["day", "codeType", "redemptions"]
    assert rows[-1][1:] == ["freestuff", "1"] and len(rows) == 31
