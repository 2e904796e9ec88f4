"""The inventory at scale in a real browser: search, filters, pages, archive and delete."""

import pytest
from playwright.sync_api import expect

from redemption.models import AuditEvent, CodeType, State
from tests.e2e.helpers import role_groups, sign_in
from tests.factories import CodeFactory, CodeTypeFactory

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

INVENTORY = "/design/redemption-codes/"


def _rows(page):
    return page.locator("table.grid tbody tr[data-code-type]")


def test_ops_finds_pages_archives_and_deletes_code_types(page, live_server, ops_user, screenshot):
    page.set_viewport_size({"width": 1360, "height": 900})
    for i in range(55):
        CodeTypeFactory(name=f"camp-{i:02d}", description="Weekly sale")
    easter = CodeTypeFactory(name="easter-2027", description="Chocolate eggs")
    CodeFactory(code_type=easter, state=State.AVAILABLE)
    CodeTypeFactory(name="hooked", fulfillment_url="https://shop.example/hook")
    CodeTypeFactory(name="off-season", description="eggs later", is_disabled=True)
    CodeTypeFactory(name="typo-campaign")
    sign_in(page, live_server.url, ops_user)

    # The first page holds 50 types by name; Next and Previous walk the pages.
    page.goto(live_server.url + INVENTORY)
    expect(_rows(page)).to_have_count(50)
    expect(_rows(page).first).to_have_attribute("data-code-type", "camp-00")
    page.get_by_role("link", name="Next →").click()
    expect(_rows(page)).to_have_count(9)
    expect(_rows(page).first).to_have_attribute("data-code-type", "camp-50")
    expect(page.get_by_text("off-season")).to_be_visible()
    page.get_by_role("link", name="← Previous").click()
    expect(_rows(page)).to_have_count(50)
    expect(_rows(page).first).to_have_attribute("data-code-type", "camp-00")

    # Search by description, then narrow with a filter; the row keeps its counts.
    page.get_by_label("Search", exact=True).fill("EGGS")
    page.get_by_role("button", name="Filter").click()
    expect(_rows(page)).to_have_count(2)
    page.get_by_label("Disabled").select_option("false")
    page.get_by_role("button", name="Filter").click()
    expect(_rows(page)).to_have_count(1)
    easter_row = page.locator('tr[data-code-type="easter-2027"]')
    expect(easter_row.locator("td.num").last).to_have_text("1")
    screenshot("inventory-filtered")
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Webhook").select_option("true")
    page.get_by_role("button", name="Filter").click()
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_have_attribute("data-code-type", "hooked")

    # Archive a type from its page: it leaves the inventory, its code is kept.
    page.goto(live_server.url + INVENTORY + "easter-2027/")
    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_text("“easter-2027” is archived")).to_be_visible()
    expect(page.get_by_test_id("archived-note")).to_be_visible()
    page.goto(live_server.url + INVENTORY + "?search=easter")
    expect(page.get_by_text("No code type matches")).to_be_visible()
    page.get_by_label("Archived").select_option("only")
    page.get_by_role("button", name="Filter").click()
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text("Archived")
    screenshot("inventory-archived")
    page.get_by_role("link", name="easter-2027").click()
    page.get_by_test_id("archived-note").get_by_role("button", name="Unarchive").click()
    expect(page.get_by_text("“easter-2027” is back in use.")).to_be_visible()
    assert CodeType.objects.get(name="easter-2027").archived_at is None

    # A type with codes cannot be deleted; an empty one can, after confirming.
    page.get_by_role("link", name="Delete code type…").click()
    expect(page.get_by_test_id("not-empty")).to_contain_text("1 code")
    page.goto(live_server.url + INVENTORY + "typo-campaign/")
    page.get_by_role("link", name="Delete code type…").click()
    page.get_by_role("button", name="Delete “typo-campaign”").click()
    expect(page.get_by_text("Code type “typo-campaign” deleted.")).to_be_visible()
    assert not CodeType.objects.filter(name="typo-campaign").exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"code_type.archive", "code_type.unarchive", "code_type.delete"} <= actions


def test_a_viewer_searches_the_inventory_but_has_no_archive_button(page, live_server, viewer_user):
    CodeTypeFactory(name="alpha", description="First")
    CodeTypeFactory(name="beta", description="Second")
    sign_in(page, live_server.url, viewer_user)

    page.goto(live_server.url + INVENTORY)
    page.get_by_label("Search", exact=True).fill("second")
    page.get_by_role("button", name="Filter").click()
    expect(_rows(page)).to_have_count(1)
    page.get_by_role("link", name="beta").click()
    expect(page.get_by_role("heading", name="beta")).to_be_visible()
    expect(page.get_by_role("button", name="Archive")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete code type…")).to_have_count(0)
