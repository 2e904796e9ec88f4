"""The portal on a phone-sized screen (420 px): no page scrolls sideways, the navigation keeps
its area names, and a wide table scrolls inside its card."""

import pytest
from playwright.sync_api import expect

from redemption.models import SharedRedemption
from tests.e2e.helpers import populate, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH = 420

# What the page itself scrolls by, sideways (0 when it fits), and the widest element that
# sticks out, to name the culprit when it does not.
OVERFLOW = """() => {
  const root = document.documentElement;
  let widest = null;
  for (const el of document.body.querySelectorAll('*')) {
    const right = el.getBoundingClientRect().right;
    if (right > innerWidth + 1 && (!widest || right > widest.right)) {
      widest = {right, tag: el.tagName, cls: el.className && String(el.className)};
    }
  }
  return {over: root.scrollWidth - innerWidth, widest};
}"""


def _pages(data) -> list[str]:
    shared = SharedRedemption.objects.get(code_type=data["shared"], profile_id="p-42")
    return [
        "/",
        f"/?code_type={data['shared'].name}",
        "/design/redemption-codes/",
        f"/design/redemption-codes/{data['ct'].name}/",
        f"/design/redemption-codes/{data['shared'].name}/",
        "/monitoring/redemption-codes/",
        f"/monitoring/redemption-codes/{data['failed'].canonical}/",
        "/users/redemption-codes/?profile=p-42",
        "/users/redemption-codes/?profile=ann",
        f"/users/redemption-codes/shared/{shared.pk}/",
        "/jobs/",
        "/audit/",
        "/server-keys/",
        "/staff/",
    ]


def test_no_main_page_scrolls_sideways_at_420_px(page, live_server, admin_user, screenshot):
    data = populate()
    page.set_viewport_size({"width": WIDTH, "height": 900})
    sign_in(page, live_server.url, admin_user)
    for path in _pages(data):
        page.goto(live_server.url + path)
        measured = page.evaluate(OVERFLOW)
        assert measured["over"] <= 0, (path, measured)
    screenshot("audit-narrow")


def test_the_narrow_header_and_navigation_keep_everything_reachable(
    page, live_server, admin_user, screenshot
):
    populate()
    page.set_viewport_size({"width": WIDTH, "height": 900})
    sign_in(page, live_server.url, admin_user)
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_visible()
    box = sign_out.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH
    # The three "Redemption Codes" links show which area each one opens.
    nav = page.get_by_role("navigation", name="Main")
    for area in ("Design", "Global Monitoring", "User Monitoring"):
        link = nav.get_by_role("link", name=f"{area} › ", exact=False)
        expect(link.first).to_be_visible()
        expect(link.first).to_contain_text(area)
    texts = [t.strip() for t in nav.get_by_role("link").all_inner_texts()]
    assert len(texts) == len(set(texts)), texts
    screenshot("nav-narrow")


def test_a_wide_table_scrolls_inside_its_card_not_the_page(page, live_server, admin_user):
    populate()
    page.set_viewport_size({"width": WIDTH, "height": 900})
    sign_in(page, live_server.url, admin_user)
    page.goto(live_server.url + "/audit/")
    scroller = page.locator(".table-scroll").first
    widths = scroller.evaluate("el => ({inner: el.scrollWidth, outer: el.clientWidth})")
    assert widths["inner"] > widths["outer"]  # the table is wider than the screen ...
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")  # ... not the page
