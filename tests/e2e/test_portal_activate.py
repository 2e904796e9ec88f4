"""Support activates a code with new custom info in a real browser (#16 item 6)."""

import pytest
from playwright.sync_api import expect

from redemption.models import Code, State
from tests.e2e.helpers import role_groups, sign_in
from tests.factories import CodeFactory, CodeTypeFactory

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_support_activates_a_code_replacing_its_custom_info(page, live_server, support_user):
    code = CodeFactory(state=State.INACTIVE, custom_code_info={"sku": "GC-25"})
    off = CodeFactory(
        state=State.INACTIVE, code_type=CodeTypeFactory(name="paused", is_disabled=True)
    )
    sign_in(page, live_server.url, support_user)

    page.goto(f"{live_server.url}/monitoring/redemption-codes/{code.canonical}/")
    field = page.get_by_label("New custom code info (optional)")
    field.fill("{not json")
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Not activated:")).to_be_visible()
    expect(page.get_by_test_id("code-state")).to_have_text("Inactive")

    page.get_by_label("New custom code info (optional)").fill('{"sku": "GC-50", "shop": 7}')
    page.get_by_role("button", name="Activate").click()
    expect(
        page.get_by_text(f"{code.scan_code} is now Available with new custom info.")
    ).to_be_visible()
    expect(page.get_by_test_id("code-state")).to_have_text("Available")
    expect(page.locator("#custom-code-info")).to_contain_text('"sku": "GC-50"')
    code.refresh_from_db()
    assert code.custom_code_info == {"sku": "GC-50", "shop": 7}

    # A code of a disabled type is not activated; the page says why.
    page.goto(f"{live_server.url}/monitoring/redemption-codes/{off.canonical}/")
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Codes of this type are disabled.")).to_be_visible()
    assert Code.objects.get(pk=off.pk).state == State.INACTIVE
