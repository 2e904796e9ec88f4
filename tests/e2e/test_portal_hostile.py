"""User-supplied text is shown as text, never run or rendered as markup, on every page."""

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import HOSTILE, populate, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_hostile_strings_render_as_text(page, live_server, admin_user, screenshot):
    data = populate(hostile=HOSTILE)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, admin_user)
    base = live_server.url
    pages = {
        "type": ("/design/redemption-codes/xmas-2026/", ["Gift cards " + HOSTILE]),
        "shared-type": ("/design/redemption-codes/freestuff/", [HOSTILE]),
        "code-redeemed": (
            f"/monitoring/redemption-codes/{data['redeemed'].canonical}/",
            ["Ann " + HOSTILE],
        ),
        "code-invalid": (
            f"/monitoring/redemption-codes/{data['invalid'].canonical}/",
            ["stolen " + HOSTILE],
        ),
        "code-failed": (
            f"/monitoring/redemption-codes/{data['failed'].canonical}/",
            ["out of stock " + HOSTILE],
        ),
        "profile": ("/users/redemption-codes/?profile=p-42", ["Ann " + HOSTILE]),
        "job": (f"/jobs/{data['job'].pk}/", [HOSTILE]),
        "audit": ("/audit/", []),
    }
    for name, (path, texts) in pages.items():
        page.goto(base + path)
        for text in texts:
            expect(page.get_by_text(text, exact=False).first).to_be_visible()
        assert page.locator("img[src='x']").count() == 0, name
        assert page.evaluate("window.__xss") is None, name
        assert page.locator("script:not([src])").count() == 0, name
    # Custom info holding the string is shown verbatim in the pretty JSON block.
    page.goto(base + f"/monitoring/redemption-codes/{data['codes'][0].canonical}/")
    expect(page.locator("#custom-code-info")).to_contain_text(HOSTILE.replace('"', '\\"'))
    screenshot("hostile-strings-as-text")
    assert dialogs == []
