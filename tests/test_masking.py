"""Live codes are masked for Viewers everywhere in the HTML they receive (SPEC §13)."""

import secrets
from datetime import timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from redemption import codes
from redemption.actors import Actor, Profile
from redemption.masking import CodeReader, mask
from redemption.models import Attempt, Batch, Code, Job, SharedRedemption, State
from redemption.services import (
    code_activate,
    code_invalidate,
    code_reset,
    code_type_create,
    redeem,
)
from tests.factories import CodeFactory, SharedRedemptionFactory

pytestmark = pytest.mark.django_db

LIVE = (State.INACTIVE, State.AVAILABLE, State.IN_PROGRESS, State.FAILED)


@pytest.mark.parametrize(
    ("display", "masked"),
    [
        ("K7QM-ABCD-EFGH-3XJ9", "K7QM-••••-••••-3XJ9"),
        ("K7QMABCDEFGH3XJ9", "K7QM••••••••3XJ9"),
        ("ABCD-EFGH-JKMN", "ABCD-••••-JKMN"),  # 12 characters: 4 and 4
        ("GIFT 0001 AAAA", "GIFT •••• AAAA"),  # spaces kept like hyphens
        ("AB-CD-EF-GH", "AB-••-••-GH"),  # 8 characters: 2 and 2
        ("ABCDEFGHJKM", "AB•••••••KM"),  # 11 characters: 2 and 2
        ("ABCDEF", "A••••F"),  # tiny codes: never more than half shown
        ("ABC", "•••"),
    ],
)
def test_the_mask_keeps_the_ends_and_the_separators(display, masked):
    assert mask(display) == masked


@pytest.mark.parametrize("state", list(State))
def test_a_reader_masks_exactly_the_live_states(state):
    viewer, support = CodeReader(masks_live=True), CodeReader(masks_live=False)
    shown = viewer.text("K7QM-ABCD-EFGH-3XJ9", state)
    assert shown == ("K7QM-••••-••••-3XJ9" if state in LIVE else "K7QM-ABCD-EFGH-3XJ9")
    assert support.text("K7QM-ABCD-EFGH-3XJ9", state) == "K7QM-ABCD-EFGH-3XJ9"


# --- every page a Viewer can open ----------------------------------------------------------------


def _random_code(groups: int = 4) -> str:
    return "-".join(
        "".join(secrets.choice(codes.ALPHABET) for _ in range(4)) for _ in range(groups)
    )


@pytest.fixture
def live_world() -> dict[str, Any]:
    """Codes in every state (random, so no two share a 9-character run) reached every way a
    page can show one: tables, attempts, a profile, audit events, a job's errors."""
    system, now = Actor.system("test"), timezone.now()
    ct = code_type_create(actor=system, name="leak-check", description="masking")
    batch = Batch.objects.create(
        code_type=ct, kind=Batch.Kind.IMPORT, quantity=9, created_at=now, created_by="test"
    )

    def make(state: str, scan_code: str | None = None, **extra: Any) -> Code:
        return CodeFactory(
            code_type=ct, batch=batch, scan_code=scan_code or _random_code(), state=state, **extra
        )

    by_state = {state: make(state) for state in LIVE}
    short = make(State.AVAILABLE, scan_code=_random_code(groups=2))  # 8 characters: 2 and 2
    for state in (State.IN_PROGRESS, State.FAILED):
        code = by_state[state]
        Code.objects.filter(pk=code.pk).update(redeemed_by_profile_id="p-77", current_attempt=1)
        Attempt.objects.create(
            code=code,
            attempt=1,
            profile_id="p-77",
            state=state,
            started_at=now,
            deadline_at=now + timedelta(hours=1),
            finished_at=now if state == State.FAILED else None,
            error_code="NO_STOCK" if state == State.FAILED else None,
        )
    # Audit events naming live codes: activated, reset back, invalidated then reset.
    activated = make(State.INACTIVE)
    code_activate(actor=system, scan_code=activated.scan_code)
    churned = make(State.AVAILABLE)
    code_invalidate(actor=system, scan_code=churned.scan_code, reason="test")
    code_reset(actor=system, scan_code=churned.scan_code, state=State.AVAILABLE)
    # Codes shown in full: redeemed (by the same profile) and invalidated.
    redeemed = make(State.AVAILABLE)
    redeem(actor=system, profile=Profile("p-77", "Pat"), scan_code=redeemed.scan_code)
    invalid = make(State.AVAILABLE)
    code_invalidate(actor=system, scan_code=invalid.scan_code, reason="stolen")
    shared = code_type_create(actor=system, name="everyone", use_type="MULTI", scan_code="OPENDOOR")
    SharedRedemptionFactory(code_type=shared, profile_id="p-77")
    live = [*by_state.values(), short, activated, churned]
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        code_type=ct,
        code_type_name=ct.name,
        batch=batch,
        status=Job.Status.SUCCEEDED,
        total=2,
        done=2,
        created_at=now,
        errors=[
            {"line": 1, "scanCode": live[1].scan_code, "code": "DUPLICATE", "message": "taken"},
            {"line": 2, "scanCode": redeemed.scan_code, "code": "DUPLICATE", "message": "x"},
        ],
        error_count=2,
    )
    for code in [*live, redeemed, invalid]:
        code.refresh_from_db()
    return {
        "ct": ct,
        "shared": shared,
        "batch": batch,
        "job": job,
        "live": live,
        "full": [redeemed, invalid],
    }


def _patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    names = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "api":
                continue  # the JSON API: no HTML
            names += _patterns(entry, prefix + (f"{entry.namespace}:" if entry.namespace else ""))
        elif isinstance(entry, URLPattern) and entry.name:
            names.append(prefix + entry.name)
    return names


def _pages(world: dict[str, Any], viewer: Any) -> dict[str, list[str]]:
    """Every named page (API aside) with the addresses a Viewer might open for it."""
    ct, code, live = world["ct"].name, world["live"][1], world["live"]
    failed = live[3]
    job = world["job"].pk
    return {
        "login": [reverse("login")],
        "sign_in_code": [reverse("sign_in_code")],
        "logout": [reverse("logout")],
        "second_factor": [reverse("second_factor")],
        "password_set": [reverse("password_set", args=["MQ", "set-password"])],
        "password_set_done": [reverse("password_set_done")],
        "password_change": [reverse("password_change")],
        "password_change_done": [reverse("password_change_done")],
        "healthz": [reverse("healthz")],
        "readyz": [reverse("readyz")],
        "metrics": [reverse("metrics")],
        "redemption:dashboard": [reverse("redemption:dashboard")],
        "redemption:inventory": [
            reverse("redemption:inventory"),
            reverse("redemption:inventory") + f"?search={ct}&archived=any&has_webhook=false",
        ],
        "redemption:code_type_create": [reverse("redemption:code_type_create")],
        "redemption:code_type_detail": [
            reverse("redemption:code_type_detail", args=[ct]),
            reverse("redemption:code_type_detail", args=[ct]) + "?state=Failed",
            reverse("redemption:code_type_detail", args=[ct]) + f"?prefix={code.canonical[:4]}",
            reverse("redemption:code_type_detail", args=[ct]) + f"?prefix={code.canonical[:9]}",
            reverse("redemption:code_type_detail", args=[world["shared"].name]),
        ],
        **{
            f"redemption:{name}": [reverse(f"redemption:{name}", args=[ct])]
            for name in (
                "code_type_edit",
                "code_type_rotate_secret",
                "code_type_reveal_secret",
                "code_generate",
                "code_import",
                "code_add",
                "code_export",
                "codes_delete",
                "codes_reset",
                "code_type_archive",
                "code_type_unarchive",
                "code_type_delete",
            )
        },
        "redemption:batch_invalidate": [
            reverse("redemption:batch_invalidate", args=[ct, world["batch"].pk])
        ],
        "redemption:lookup": [
            reverse("redemption:lookup"),
            reverse("redemption:lookup") + f"?q={code.scan_code.lower()}",
            reverse("redemption:lookup") + "?q=OPENDOOR",
        ],
        "redemption:test_code": [
            reverse("redemption:test_code") + f"?test-code_type={ct}&test-state=Available"
        ],
        "redemption:code_detail_by_id": [
            reverse("redemption:code_detail_by_id", args=[c.pk]) for c in live + world["full"]
        ],
        **{
            f"redemption:{name}": [reverse(f"redemption:{name}", args=[failed.canonical])]
            for name in (
                "code_detail",
                "code_activate",
                "code_invalidate",
                "code_reset",
                "code_custom_info",
            )
        },
        "redemption:user_monitoring": [
            reverse("redemption:user_monitoring") + "?profile=p-77",
            reverse("redemption:user_monitoring") + f"?profile=p-77&code_type={ct}",
            reverse("redemption:user_monitoring") + "?profile=p-",
            reverse("redemption:user_monitoring") + "?profile=pat",
        ],
        "redemption:shared_redemption_detail": [
            reverse("redemption:shared_redemption_detail", args=[sr.pk])
            for sr in SharedRedemption.objects.filter(profile_id="p-77")
        ],
        "redemption:redemptions_csv": [
            reverse("redemption:redemptions_csv"),
            reverse("redemption:redemptions_csv") + f"?code_type={ct}",
        ],
        "redemption:shared_redemption_delete": [
            reverse("redemption:shared_redemption_delete") + "?code_type=everyone&profile=p-77"
        ],
        "redemption:job_list": [reverse("redemption:job_list")],
        "redemption:job_detail": [reverse("redemption:job_detail", args=[job])],
        "redemption:job_status": [reverse("redemption:job_status", args=[job])],
        "redemption:job_result": [reverse("redemption:job_result", args=[job])],
        "redemption:audit_log": [
            reverse("redemption:audit_log"),
            reverse("redemption:audit_log") + f"?scan_code={code.scan_code}",
        ],
        "redemption:server_keys": [reverse("redemption:server_keys")],
        "redemption:server_key_revoke": [reverse("redemption:server_key_revoke", args=[1])],
        "dispatcherv2": [reverse("dispatcherv2")],
        "s2sdispatcher": [reverse("s2sdispatcher")],
        "redemption:braincloud_apps": [reverse("redemption:braincloud_apps")],
        **{
            f"redemption:{name}": [reverse(f"redemption:{name}", args=["12345"])]
            for name in ("braincloud_app", "braincloud_app_rotate_secret", "braincloud_app_toggle")
        },
        **{
            f"redemption:{name}": [reverse(f"redemption:{name}", args=[viewer.pk])]
            for name in (
                "staff_users",
                "staff_user_detail",
                "staff_user_role",
                "staff_user_active",
                "staff_user_unlock",
                "staff_user_second_factor_reset",
                "staff_user_password_reset",
            )
            if name != "staff_users"
        },
        "redemption:staff_users": [reverse("redemption:staff_users")],
    }


def _leaks(body: str, live: list[Code]) -> list[str]:
    """Every live code whose display or canonical form, or any 9-character run of it, is in
    the body."""
    found = []
    for code in live:
        for form in {code.scan_code, code.canonical}:
            runs = {form[i : i + 9] for i in range(max(1, len(form) - 8))}
            found += [f"{code.scan_code} ({run})" for run in runs if run in body]
    return found


def test_no_page_a_viewer_receives_holds_a_live_code(client, viewer_user, live_world):
    # Given every page (the API aside), signed in as a Viewer, with live codes everywhere
    pages = _pages(live_world, viewer_user)
    assert set(pages) == set(_patterns(get_resolver())), "a page is missing from this test"
    client.force_login(viewer_user)
    seen, statuses = 0, {}

    # When the Viewer opens each of them (following redirects)
    for name, urls in pages.items():
        for url in urls:
            response = client.get(url, follow=True)
            body = (
                b"".join(response.streaming_content) if response.streaming else response.content
            ).decode(errors="replace")
            statuses[url] = response.status_code
            # Then no live code, nor any 9-character run of one, is anywhere in the HTML
            assert _leaks(body, live_world["live"]) == [], (name, url)
            seen += 1

    # (and the pages did show codes: masked live ones, full redeemed/invalidated ones)
    dashboard = client.get(reverse("redemption:code_type_detail", args=["leak-check"]))
    text = dashboard.content.decode()
    for code in live_world["live"]:
        assert mask(code.scan_code) in text
        assert reverse("redemption:code_detail_by_id", args=[code.pk]) in text
    for code in live_world["full"]:
        assert code.scan_code in text
    assert (
        statuses[
            reverse("redemption:test_code") + "?test-code_type=leak-check&test-state=Available"
        ]
        == 403
    )
    assert seen > 60


def test_the_same_pages_show_support_every_code_in_full(client, support_user, live_world):
    client.force_login(support_user)

    page = client.get(reverse("redemption:code_type_detail", args=["leak-check"])).content
    profile = client.get(reverse("redemption:user_monitoring") + "?profile=p-77").content

    for code in live_world["live"]:
        assert code.scan_code.encode() in page
        assert reverse("redemption:code_detail", args=[code.canonical]).encode() in page
    assert live_world["live"][2].scan_code.encode() in profile  # InProgress, p-77's


def test_a_viewer_looks_a_code_up_by_its_full_code_and_lands_on_its_id_page(
    client, viewer_user, live_world
):
    client.force_login(viewer_user)
    code = live_world["live"][1]

    found = client.get(reverse("redemption:lookup"), {"q": code.scan_code.lower()})
    by_canonical = client.get(reverse("redemption:code_detail", args=[code.canonical]))
    page = client.get(found["Location"])

    assert found["Location"] == reverse("redemption:code_detail_by_id", args=[code.pk])
    assert by_canonical["Location"] == found["Location"]
    assert page.status_code == 200
    assert mask(code.scan_code).encode() in page.content


def test_a_viewer_gets_no_test_code(client, viewer_user, live_world):
    client.force_login(viewer_user)

    lookup = client.get(reverse("redemption:lookup"))
    refused = client.get(
        reverse("redemption:test_code"), {"test-code_type": "leak-check", "test-state": "Available"}
    )

    assert b"Get a test code" not in lookup.content
    assert refused.status_code == 403


def test_a_viewer_filters_by_at_most_four_characters_of_a_code(client, viewer_user, live_world):
    client.force_login(viewer_user)
    code = live_world["live"][1]
    url = reverse("redemption:code_type_detail", args=["leak-check"])

    short = client.get(url, {"prefix": code.canonical[:4]})
    long = client.get(url, {"prefix": code.canonical[:5]})

    assert code.pk in [c.pk for c in short.context["keyset"].rows]
    assert long.context["keyset"].rows == []
    assert b"at most 4 characters of a code" in long.content
