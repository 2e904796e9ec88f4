"""Staff security in a real browser: two-factor enrolment and sign-in, lock-out across
addresses and unlock, a Viewer's pages without live codes, the staff-users page."""

import base64
import time

import pytest
from django.contrib.auth.models import User
from django_otp.oath import TOTP
from playwright.sync_api import expect

from redemption import permissions
from redemption.masking import mask
from redemption.models import AuditEvent, State
from tests.e2e.helpers import populate, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _code(secret_b32: str, steps_ahead: int = 0) -> str:
    totp = TOTP(base64.b32decode(secret_b32.replace(" ", "")), digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def _password(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_enrol_then_sign_in_with_a_code_and_a_wrong_code_is_refused(
    page, live_server, ops_user, screenshot
):
    base = live_server.url
    sign_in(page, base, ops_user)
    page.get_by_role("link", name="Two-factor sign-in").click()
    expect(page.get_by_test_id("qr-code")).to_be_visible()
    secret = page.get_by_test_id("second-factor-secret").text_content()
    screenshot("2fa-enrol")
    page.get_by_role("textbox", name="Code").fill(_code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    screenshot("2fa-recovery-codes")
    page.get_by_role("button", name="Sign out").click()

    _password(page, base, ops_user.username, "pw-olive-ops-123!")
    expect(page.get_by_role("heading", name="One-time code")).to_be_visible()
    page.get_by_role("textbox", name="Code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not valid.")).to_be_visible()
    screenshot("2fa-wrong-code")
    page.get_by_role("textbox", name="Code").fill(_code(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(base + "/")
    expect(page.get_by_test_id("current-user")).to_have_text(ops_user.username)


def test_an_account_locked_from_many_addresses_is_unlocked_by_a_superuser(
    browser, live_server, ops_user, admin_user, settings, screenshot
):
    # Behind one trusted proxy, each guess comes from another client address.
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_FAILURE_LIMIT = 3
    base = live_server.url
    for n in range(4):
        context = browser.new_context(extra_http_headers={"X-Forwarded-For": f"203.0.113.{n}"})
        attacker = context.new_page()
        _password(attacker, base, ops_user.username, f"guess-{n}")
        if n < 3:
            expect(attacker.get_by_text("did not match")).to_be_visible()
        else:
            expect(attacker.get_by_test_id("sign-in-paused")).to_be_visible()
        context.close()

    owner_context = browser.new_context(extra_http_headers={"X-Forwarded-For": "198.51.100.9"})
    owner = owner_context.new_page()
    _password(owner, base, ops_user.username, "pw-olive-ops-123!")
    expect(owner.get_by_test_id("sign-in-paused")).to_be_visible()
    screenshot_page = owner

    admin_context = browser.new_context(extra_http_headers={"X-Forwarded-For": "198.51.100.10"})
    admin = admin_context.new_page()
    sign_in(admin, base, admin_user)
    admin.get_by_role("link", name="Staff users").click()
    row = admin.get_by_role("row", name="olive-ops")
    expect(row.get_by_text("Locked")).to_be_visible()
    row.get_by_role("link", name="olive-ops").click()
    admin.get_by_role("button", name="Unlock").click()
    expect(admin.get_by_text("olive-ops may sign in again")).to_be_visible()

    sign_in(screenshot_page, base, ops_user)
    expect(screenshot_page.get_by_test_id("current-user")).to_have_text("olive-ops")
    assert AuditEvent.objects.filter(action="staff_user.unlock").count() == 1
    for ctx in (owner_context, admin_context):
        ctx.close()


def test_a_viewers_pages_hold_no_live_code(page, live_server, viewer_user):
    data = populate()
    live = [c for c in [*data["codes"], data["failed"]] if c.state != State.REDEEMED]
    base = live_server.url
    sign_in(page, base, viewer_user)
    visited = []

    def check() -> None:
        html = page.content()
        visited.append(page.url)
        for code in live:
            for form in (code.scan_code, code.canonical):
                assert form not in html, (page.url, form)

    check()
    page.get_by_role("link", name="Design › Marketplace › Redemption Codes").click()
    check()
    page.get_by_role("link", name="xmas-2026").click()
    check()
    expect(page.get_by_role("link", name=mask(data["failed"].scan_code)).first).to_be_visible()
    page.get_by_role("link", name=mask(data["failed"].scan_code)).first.click()
    expect(page.get_by_test_id("scan-code")).to_have_text(mask(data["failed"].scan_code))
    assert "/monitoring/redemption-codes/id/" in page.url
    check()
    page.get_by_role("link", name="Global Monitoring › Redemption Codes").click()
    expect(page.get_by_role("button", name="Get test code")).to_have_count(0)
    page.get_by_label("Scan code").fill(data["codes"][0].scan_code.lower())
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("scan-code")).to_have_text(mask(data["codes"][0].scan_code))
    check()
    page.get_by_role("link", name="User Monitoring › Redemption Codes").click()
    page.get_by_label("Profile id").fill("p-42")
    page.get_by_role("button", name="Show codes").click()
    expect(page.get_by_role("link", name=data["redeemed"].scan_code)).to_be_visible()
    check()
    for name in ("Jobs", "Audit log", "Dashboard"):
        page.get_by_role("link", name=name, exact=True).click()
        check()
    assert len(visited) == 9


def test_a_superuser_creates_a_staff_user_changes_the_role_and_deactivates_it(
    page, live_server, admin_user, screenshot
):
    base = live_server.url
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, base, admin_user)
    page.get_by_role("link", name="Staff users").click()
    page.get_by_label("User name").fill("nina")
    page.get_by_label("Role").select_option("Support")
    page.get_by_role("button", name="Create staff user").click()
    link = page.get_by_test_id("set-password-link").text_content()
    screenshot("staff-user-created")
    assert link.startswith(base + "/accounts/set-password/")

    page.get_by_role("link", name="nina").click()
    expect(page.get_by_test_id("staff-role")).to_have_text("Support")
    page.get_by_label("Role").select_option("Ops")
    page.get_by_role("button", name="Change role").click()
    expect(page.get_by_test_id("staff-role")).to_have_text("Ops")
    assert permissions.role_name(User.objects.get(username="nina")) == "Ops"
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_test_id("staff-active")).to_have_text("no — cannot sign in")
    screenshot("staff-user-deactivated")
    assert not User.objects.get(username="nina").is_active
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"staff_user.create", "staff_user.role", "staff_user.deactivate"} <= actions
