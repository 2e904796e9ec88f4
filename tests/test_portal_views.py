"""Portal pages through Django's test client: roles, forms, messages, confirm flows, escaping."""

import csv
import io
import json
import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from redemption import rules
from redemption.masking import mask
from redemption.models import (
    Attempt,
    AuditEvent,
    Code,
    CodeType,
    Job,
    ServerKey,
    SharedRedemption,
    State,
)
from redemption.services import bulk
from tests.e2e.helpers import HOSTILE, populate
from tests.factories import CodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def data():
    return populate(hostile=HOSTILE)


def _login(client, user):
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _read_pages(d) -> list[str]:
    ct = d["ct"].name
    return [
        reverse("redemption:dashboard"),
        reverse("redemption:inventory"),
        reverse("redemption:code_type_detail", args=[ct]),
        reverse("redemption:code_type_detail", args=[d["shared"].name]),
        reverse("redemption:lookup"),
        reverse("redemption:code_detail", args=[d["failed"].canonical]),
        reverse("redemption:user_monitoring") + "?profile=p-42",
        reverse("redemption:job_list"),
        reverse("redemption:job_detail", args=[d["job"].pk]),
        reverse("redemption:job_status", args=[d["job"].pk]),
        reverse("redemption:audit_log"),
    ]


def _mutations(d) -> list[tuple[str, dict, str]]:
    """(url, POST data, minimum role) of every portal mutation."""
    ct, code = d["ct"].name, d["codes"][0].canonical
    return [
        (reverse("redemption:code_activate", args=[code]), {}, "Support"),
        (reverse("redemption:code_invalidate", args=[code]), {"reason": "x"}, "Support"),
        (reverse("redemption:code_reset", args=[code]), {"state": "Inactive"}, "Support"),
        (
            reverse("redemption:code_reset", args=[d["redeemed"].canonical]),
            {"state": "Available"},
            "Ops",
        ),
        (
            reverse("redemption:code_custom_info", args=[code]),
            {"custom_code_info": "{}", "version": "1"},
            "Support",
        ),
        (reverse("redemption:code_type_create"), {"name": "new-one"}, "Ops"),
        (reverse("redemption:code_type_edit", args=[ct]), {"description": "x"}, "Ops"),
        (reverse("redemption:code_type_rotate_secret", args=[ct]), {}, "Ops"),
        (reverse("redemption:code_generate", args=[ct]), {"quantity": "5"}, "Ops"),
        (reverse("redemption:code_import", args=[ct]), {}, "Ops"),
        (reverse("redemption:code_add", args=[ct]), {"scan_code": "ABCD-1234"}, "Ops"),
        (
            reverse("redemption:batch_invalidate", args=[ct, d["batch"].pk]),
            {"reason": "x"},
            "Ops",
        ),
        (
            reverse("redemption:codes_delete", args=[ct]),
            {"states": ["Available"], "confirm_name": ct},
            "Ops",
        ),
        (
            reverse("redemption:codes_reset", args=[ct]),
            {"states": ["Available"], "confirm_name": ct, "to_state": "Inactive"},
            "Ops",
        ),
        (
            reverse("redemption:shared_redemption_delete"),
            {"code_type": d["shared"].name, "profile": "p-42", "confirm": "yes"},
            "Ops",
        ),
        (reverse("redemption:server_keys"), {"name": "k"}, "Admin"),
        (reverse("redemption:server_key_revoke", args=[1]), {}, "Admin"),
    ]


RANK = {"Viewer": 1, "Support": 2, "Ops": 3, "Admin": 4}


# --- roles -------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, data):
    for url in _read_pages(data):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_a_staff_user_without_a_role_gets_403(client, data):
    _login(client, User.objects.create_user("nobody", password="x"))
    response = client.get(reverse("redemption:dashboard"))
    assert response.status_code == 403
    assert b"You can&#x27;t do that" in response.content or b"can't do that" in response.content


def test_a_viewer_reads_every_page(client, data, viewer_user):
    _login(client, viewer_user)
    for url in _read_pages(data):
        assert client.get(url, follow=True).status_code == 200, url


@pytest.mark.parametrize(
    ("user_fixture", "rank"),
    [("viewer_user", 1), ("support_user", 2), ("ops_user", 3)],
)
def test_every_mutation_above_the_role_is_refused_with_403(
    client, data, request, user_fixture, rank
):
    _login(client, request.getfixturevalue(user_fixture))
    before = (Code.objects.count(), CodeType.objects.count(), Job.objects.count())
    audit_before = AuditEvent.objects.count()
    for url, post, role in _mutations(data):
        if RANK[role] <= rank:
            continue
        response = client.post(url, post)
        assert response.status_code == 403, (url, role)
        assert b"Your role does not allow" in response.content
    assert (Code.objects.count(), CodeType.objects.count(), Job.objects.count()) == before
    assert AuditEvent.objects.count() == audit_before


def test_buttons_a_viewer_cannot_use_are_not_shown(client, data, viewer_user):
    _login(client, viewer_user)
    code_page = client.get(
        reverse("redemption:code_detail", args=[data["codes"][0].canonical]), follow=True
    )
    type_page = client.get(reverse("redemption:code_type_detail", args=[data["ct"].name]))
    assert b">Invalidate<" not in code_page.content
    assert b"can view this code but not change it" in code_page.content
    for label in (b"Generate codes", b"Delete codes", b"Edit settings", b"Invalidate\xe2\x80\xa6"):
        assert label not in type_page.content


def test_support_sees_single_code_actions_but_not_ops_ones(client, data, support_user):
    _login(client, support_user)
    code_page = client.get(reverse("redemption:code_detail", args=[data["codes"][0].canonical]))
    type_page = client.get(reverse("redemption:code_type_detail", args=[data["ct"].name]))
    assert b">Invalidate<" in code_page.content
    assert b"Generate codes" not in type_page.content
    assert b"Server keys" not in type_page.content


# --- code types ---------------------------------------------------------------------------------


def test_ops_creates_a_code_type_with_fulfilment(client, ops_user):
    _login(client, ops_user)
    response = client.post(
        reverse("redemption:code_type_create"),
        {
            "name": "summer",
            "use_type": "SINGLE",
            "description": "Summer sale",
            "custom_code_info": '{"sku": "GC-25"}',
            "fulfillment_url": "https://shop.example/hook",
            "fulfillment_async": "on",
            "fulfillment_max_retries": "3",
            "fulfillment_timeout_seconds": "20",
        },
        follow=True,
    )
    ct = CodeType.objects.get(name="summer")
    assert response.redirect_chain[-1][0] == reverse("redemption:code_type_detail", args=["summer"])
    assert "Code type “summer” created." in _messages(response)
    assert (ct.fulfillment_url, ct.fulfillment_async, ct.fulfillment_max_retries) == (
        "https://shop.example/hook",
        True,
        3,
    )
    assert ct.fulfillment_timeout_seconds == 20
    assert ct.custom_code_info == {"sku": "GC-25"}
    assert ct.webhook_secret.startswith("whsec_")


def test_a_bad_code_type_form_keeps_the_input_and_names_the_fields(client, ops_user):
    _login(client, ops_user)
    response = client.post(
        reverse("redemption:code_type_create"),
        {
            "name": "shared-one",
            "use_type": "MULTI",
            "description": "kept text",
            "custom_code_info": "{not json",
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
        },
    )
    form = response.context["form"]
    assert response.status_code == 200
    assert "scan_code" in form.errors and "custom_code_info" in form.errors
    assert b"kept text" in response.content
    assert not CodeType.objects.filter(name="shared-one").exists()


def test_a_duplicate_code_type_name_is_reported_on_the_name_field(client, ops_user, data):
    _login(client, ops_user)
    response = client.post(
        reverse("redemption:code_type_create"),
        {
            "name": data["ct"].name,
            "use_type": "SINGLE",
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
        },
    )
    assert response.status_code == 200
    assert "A code type with that name already exists." in _messages(response)


def test_editing_a_stale_version_is_refused_and_shows_the_current_settings(client, ops_user, data):
    _login(client, ops_user)
    url = reverse("redemption:code_type_edit", args=[data["ct"].name])
    response = client.post(
        url,
        {
            "description": "mine",
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
            "version": "999",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == url
    assert any("Someone else changed" in m for m in _messages(response))
    data["ct"].refresh_from_db()
    assert "mine" not in data["ct"].description


def test_ops_sees_the_webhook_secret_masked_and_the_rotated_one_in_full_once(
    client, ops_user, data
):
    _login(client, ops_user)
    old = data["ct"].webhook_secret
    edit = reverse("redemption:code_type_edit", args=[data["ct"].name])
    page = client.get(edit)
    assert old.encode() not in page.content
    assert old[:10].encode() in page.content
    response = client.post(
        reverse("redemption:code_type_rotate_secret", args=[data["ct"].name]), follow=True
    )
    data["ct"].refresh_from_db()
    new = data["ct"].webhook_secret
    assert new != old
    assert new.encode() in response.content
    assert new.encode() not in client.get(edit).content


def test_the_type_page_shows_recent_failed_attempts(client, support_user, data):
    _login(client, support_user)
    response = client.get(reverse("redemption:code_type_detail", args=[data["ct"].name]))
    assert b"REDEMPTION_FAILED" in response.content
    assert data["failed"].scan_code.encode() in response.content


def test_a_viewer_sees_failed_attempts_with_the_code_masked_and_linked_by_id(
    client, viewer_user, data
):
    _login(client, viewer_user)
    response = client.get(reverse("redemption:code_type_detail", args=[data["ct"].name]))
    failed = data["failed"]
    assert b"REDEMPTION_FAILED" in response.content
    assert failed.scan_code.encode() not in response.content
    assert mask(failed.scan_code).encode() in response.content
    assert reverse("redemption:code_detail_by_id", args=[failed.pk]).encode() in response.content


# --- codes list ---------------------------------------------------------------------------------


def test_the_code_list_filters_by_state_and_prefix_and_pages_by_keyset(client, support_user, data):
    _login(client, support_user)
    url = reverse("redemption:code_type_detail", args=[data["ct"].name])
    only_failed = client.get(url, {"state": "Failed"})
    assert [c.state for c in only_failed.context["keyset"].rows] == ["Failed"]
    prefix = client.get(url, {"prefix": data["codes"][0].scan_code.lower()})
    assert [c.pk for c in prefix.context["keyset"].rows] == [data["codes"][0].pk]
    first = client.get(url)
    all_ids = sorted(c.pk for c in first.context["keyset"].rows)
    page2 = client.get(url, {"after": str(all_ids[2])})
    assert [c.pk for c in page2.context["keyset"].rows] == all_ids[3:]


def test_a_code_in_progress_shows_the_in_progress_badge_in_every_list(client, support_user, data):
    """The lists badge a state by its value, as the code's own page does (django-tables2 used
    to draw the choice's label, "In Progress", with a class no style matched)."""
    code = CodeFactory(code_type=data["ct"], state=State.IN_PROGRESS, redeemed_by_profile_id="p-42")
    Attempt.objects.create(
        code=code,
        attempt=1,
        profile_id="p-42",
        state=State.IN_PROGRESS,
        started_at=code.created_at,
        deadline_at=code.created_at,
    )
    _login(client, support_user)
    badge = b'<span class="badge state-inprogress">InProgress</span>'
    for url in (
        reverse("redemption:code_type_detail", args=[data["ct"].name]) + "?state=InProgress",
        reverse("redemption:code_detail", args=[code.canonical]),
        reverse("redemption:user_monitoring") + "?profile=p-42",
    ):
        response = client.get(url)
        assert badge in response.content, url
        assert b"state-in progress" not in response.content, url


# --- global monitoring --------------------------------------------------------------------------


def test_a_lower_case_hyphenless_lookup_opens_the_code(client, support_user, data):
    _login(client, support_user)
    code = data["codes"][0]
    response = client.get(
        reverse("redemption:lookup"), {"q": code.scan_code.lower().replace("-", "")}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("redemption:code_detail", args=[code.canonical])


def test_an_unknown_code_is_reported_on_the_lookup_form(client, viewer_user, data):
    _login(client, viewer_user)
    response = client.get(reverse("redemption:lookup"), {"q": "ZZZZ-9999"})
    assert response.status_code == 404
    assert "No redemption code matches" in response.context["form"].errors["q"][0]


def test_a_shared_scan_code_lookup_opens_its_code_type(client, viewer_user, data):
    _login(client, viewer_user)
    response = client.get(reverse("redemption:lookup"), {"q": "free stuff"})
    assert response["Location"] == reverse("redemption:code_type_detail", args=["freestuff"])


def test_get_test_code_opens_the_first_code_of_a_type_and_state(client, support_user, data):
    _login(client, support_user)
    response = client.get(
        reverse("redemption:test_code"), {"test-code_type": data["ct"].name, "test-state": "Failed"}
    )
    assert response["Location"] == reverse(
        "redemption:code_detail", args=[data["failed"].canonical]
    )
    none = client.get(
        reverse("redemption:test_code"),
        {"test-code_type": data["ct"].name, "test-state": "InProgress"},
        follow=True,
    )
    assert "“xmas-2026” has no InProgress code." in _messages(none)


def test_support_invalidates_with_a_reason_and_sees_it(client, support_user, data):
    _login(client, support_user)
    code = data["codes"][0]
    response = client.post(
        reverse("redemption:code_invalidate", args=[code.canonical]),
        {"reason": "card reported stolen"},
        follow=True,
    )
    code.refresh_from_db()
    assert code.state == State.INVALIDATED
    assert code.invalidation_reason == "card reported stolen"
    assert f"{code.scan_code} has been invalidated." in _messages(response)
    assert b"card reported stolen" in response.content


def test_a_refused_transition_becomes_an_error_message(client, support_user, data):
    _login(client, support_user)
    response = client.post(
        reverse("redemption:code_activate", args=[data["redeemed"].canonical]), follow=True
    )
    assert "The code has already been redeemed." in _messages(response)


def test_ops_resets_a_redeemed_code(client, ops_user, data):
    _login(client, ops_user)
    code = data["redeemed"]
    page = client.get(reverse("redemption:code_detail", args=[code.canonical]))
    assert b"Reset code" in page.content
    client.post(reverse("redemption:code_reset", args=[code.canonical]), {"state": "Available"})
    code.refresh_from_db()
    assert (code.state, code.redeemed_by_profile_id) == (State.AVAILABLE, None)


def test_support_may_not_reset_a_redeemed_code_and_is_not_offered_it(client, support_user, data):
    _login(client, support_user)
    code = data["redeemed"]
    page = client.get(reverse("redemption:code_detail", args=[code.canonical]))
    failed_page = client.get(reverse("redemption:code_detail", args=[data["failed"].canonical]))

    refused = client.post(
        reverse("redemption:code_reset", args=[code.canonical]), {"state": "Available"}
    )

    assert b"Reset code" not in page.content
    assert b"that needs the Ops role" in page.content
    assert b"Reset code" in failed_page.content
    assert refused.status_code == 403
    code.refresh_from_db()
    assert (code.state, code.redeemed_by_profile_id) == (State.REDEEMED, "p-42")


def test_support_resets_a_failed_code(client, support_user, data):
    _login(client, support_user)
    code = data["failed"]
    client.post(reverse("redemption:code_reset", args=[code.canonical]), {"state": "Available"})
    code.refresh_from_db()
    assert (code.state, code.redeemed_by_profile_id) == (State.AVAILABLE, None)


def test_custom_info_edit_refuses_a_stale_version(client, support_user, data):
    _login(client, support_user)
    code = data["codes"][0]
    url = reverse("redemption:code_custom_info", args=[code.canonical])
    ok = client.post(url, {"custom_code_info": '{"a": 1}', "version": str(code.version)})
    assert ok.status_code == 302
    stale = client.post(
        url, {"custom_code_info": '{"a": 2}', "version": str(code.version)}, follow=True
    )
    code.refresh_from_db()
    assert code.custom_code_info == {"a": 1}
    assert any("Someone else changed this code" in m for m in _messages(stale))


# --- user monitoring ----------------------------------------------------------------------------


def test_a_profile_page_lists_codes_shared_redemptions_and_failed_attempts(
    client, viewer_user, data
):
    _login(client, viewer_user)
    response = client.get(reverse("redemption:user_monitoring"), {"profile": "p-42"})
    records = [r.record for r in response.context["records_table"].rows]
    assert {getattr(r, "scan_code", None) or r.code_type.scan_code for r in records} == {
        data["redeemed"].scan_code,
        data["failed"].scan_code,
        "FREESTUFF",
    }
    assert [a["error_code"] for a in response.context["attempts"]["rows"]] == ["REDEMPTION_FAILED"]


def test_ops_deletes_a_shared_redemption_after_confirming(client, ops_user, data):
    _login(client, ops_user)
    url = reverse("redemption:shared_redemption_delete")
    params = {"code_type": "freestuff", "profile": "p-42"}
    confirm = client.get(url, params)
    assert b"Delete redemption" in confirm.content
    assert SharedRedemption.objects.filter(profile_id="p-42").exists()
    client.post(url, {**params, "confirm": "yes"})
    assert not SharedRedemption.objects.filter(profile_id="p-42").exists()


# --- bulk work ----------------------------------------------------------------------------------


def test_generate_starts_a_job_whose_result_downloads(client, ops_user, data):
    _login(client, ops_user)
    response = client.post(
        reverse("redemption:code_generate", args=[data["ct"].name]),
        {"quantity": "25", "state": "Available", "algorithm": "Crockford", "length": "12"},
    )
    job = Job.objects.get(kind=Job.Kind.GENERATE)
    assert response["Location"] == reverse("redemption:job_detail", args=[job.pk])
    bulk.run_job(job.pk)
    status = client.get(reverse("redemption:job_status", args=[job.pk])).json()
    assert (status["status"], status["done"], status["percent"]) == ("succeeded", 25, 100)
    result = client.get(reverse("redemption:job_result", args=[job.pk]))
    lines = b"".join(result.streaming_content).decode().splitlines()
    assert lines[0] == "scanCode" and len(lines) == 26


def test_generate_errors_from_the_service_show_on_the_form(client, ops_user, data):
    _login(client, ops_user)
    response = client.post(
        reverse("redemption:code_generate", args=[data["ct"].name]),
        {
            "quantity": "100",
            "state": "Available",
            "algorithm": "Crockford",
            "length": "8",
            "code_prefix": "no good!",
        },
    )
    assert response.status_code == 200
    assert not Job.objects.filter(kind=Job.Kind.GENERATE).exists()
    assert response.context["form"].errors or _messages(response)


def test_a_service_field_error_lands_on_the_form_field_the_form_names(client, ops_user, code_type):
    _login(client, ops_user)
    big = json.dumps({"x": "y" * rules.JSON_OBJECT_MAX_BYTES})

    generate = client.post(
        reverse("redemption:code_generate", args=[code_type.name]),
        {
            "quantity": "5",
            "state": "Available",
            "algorithm": "Crockford",
            "code_prefix": "no good!",
        },
    )
    add = client.post(
        reverse("redemption:code_add", args=[code_type.name]),
        {"scan_code": "ABCD-1234", "state": "Inactive", "custom_code_info": big},
    )

    assert generate.context["form"].errors == {"code_prefix": [rules.PREFIX_RULE]}
    assert add.context["form"].errors == {"custom_code_info": [f"must be {rules.JSON_OBJECT_RULE}"]}
    assert not Job.objects.exists()
    assert not Code.objects.exists()


def test_import_starts_a_job_and_reports_bad_lines(client, ops_user, data):
    _login(client, ops_user)
    upload = io.BytesIO(b"IMPT-0001-AAAA\nIMPT-0002-BBBB,Available\n!!\n")
    upload.name = "codes.csv"
    response = client.post(
        reverse("redemption:code_import", args=[data["ct"].name]), {"file": upload}
    )
    job = Job.objects.filter(kind=Job.Kind.IMPORT).exclude(pk=data["job"].pk).get()
    assert response["Location"] == reverse("redemption:job_detail", args=[job.pk])
    bulk.run_job(job.pk)
    page = client.get(response["Location"])
    assert Code.objects.filter(canonical__in=["1MPT0001AAAA", "1MPT0002BBBB"]).count() == 2
    assert page.context["errors"]


def test_export_streams_the_filtered_codes_as_csv(client, ops_user, data):
    _login(client, ops_user)
    response = client.get(
        reverse("redemption:code_export", args=[data["ct"].name]), {"state": "Available"}
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "scanCode"
    assert {r[1] for r in rows[1:]} == {"Available"}
    assert len(rows) - 1 == 3


def test_batch_invalidate_needs_a_reason_and_reports_the_count(client, ops_user, data):
    _login(client, ops_user)
    url = reverse("redemption:batch_invalidate", args=[data["ct"].name, data["batch"].pk])
    missing = client.post(url, {"reason": ""})
    assert "reason" in missing.context["form"].errors
    response = client.post(url, {"reason": "leaked on a forum"}, follow=True)
    assert f"Invalidated 4 codes of batch {data['batch'].pk}." in _messages(response)
    assert Code.objects.filter(batch=data["batch"], state=State.REDEEMED).count() == 1


def test_the_delete_confirm_page_excludes_redeemed_and_in_progress_by_default(
    client, ops_user, data
):
    _login(client, ops_user)
    page = client.get(reverse("redemption:codes_delete", args=[data["ct"].name])).content.decode()
    checked = set(re.findall(r'name="states" value="(\w+)" id="[^"]+" checked', page))
    assert checked == {"Inactive", "Available", "Invalidated", "Failed"}
    assert re.search(r'data-testid="count-Available">3<', page)
    assert "export every code as CSV" in page


def test_a_wrong_typed_name_refuses_the_delete_and_changes_nothing(client, ops_user, data):
    _login(client, ops_user)
    before = Code.objects.count()
    response = client.post(
        reverse("redemption:codes_delete", args=[data["ct"].name]),
        {"states": ["Available", "Redeemed"], "confirm_name": "XMAS-2026"},
    )
    assert response.status_code == 200
    assert "not this code type's name" in response.context["form"].errors["confirm_name"][0]
    assert Code.objects.count() == before
    assert not Job.objects.filter(kind=Job.Kind.DELETE_CODES).exists()
    # The operator's choice is kept, including the explicit opt-in for Redeemed.
    assert re.search(r'value="Redeemed" id="state-Redeemed" checked', response.content.decode())


def test_delete_and_reset_run_as_jobs_and_touch_only_the_chosen_states(client, ops_user, data):
    _login(client, ops_user)
    ct = data["ct"].name
    reset = client.post(
        reverse("redemption:codes_reset", args=[ct]),
        {"states": ["Invalidated"], "confirm_name": ct, "to_state": "Available"},
    )
    bulk.run_job(Job.objects.get(kind=Job.Kind.RESET_CODES).pk)
    assert reset.status_code == 302
    assert Code.objects.get(pk=data["invalid"].pk).state == State.AVAILABLE
    client.post(
        reverse("redemption:codes_delete", args=[ct]),
        {"states": ["Available"], "confirm_name": ct},
    )
    bulk.run_job(Job.objects.get(kind=Job.Kind.DELETE_CODES).pk)
    left = set(Code.objects.filter(code_type=data["ct"]).values_list("state", flat=True))
    assert left == {State.REDEEMED, State.FAILED}


# --- jobs, audit, keys --------------------------------------------------------------------------


def test_job_page_lists_errors_and_offers_a_refresh_link_while_running(client, viewer_user, data):
    _login(client, viewer_user)
    running = Job.objects.create(
        kind=Job.Kind.GENERATE,
        status=Job.Status.RUNNING,
        total=200,
        done=50,
        created_at=data["job"].created_at,
    )
    page = client.get(reverse("redemption:job_detail", args=[running.pk])).content.decode()
    assert 'value="25"' in page and "Refresh" in page
    done_page = client.get(reverse("redemption:job_detail", args=[data["job"].pk]))
    assert b"INVALID_SCAN_CODE" in done_page.content


@pytest.mark.parametrize("page", ["job_detail", "job_status", "job_result"])
def test_an_unknown_job_is_a_404(client, ops_user, data, page):
    _login(client, ops_user)
    missing = "2f1c3e4a-0000-4000-8000-000000000000"

    response = client.get(reverse(f"redemption:{page}", args=[missing]))

    assert response.status_code == 404


@pytest.mark.parametrize("user_fixture", ["viewer_user", "support_user"])
def test_the_audit_log_filters_by_action_and_scan_code(client, data, request, user_fixture):
    _login(client, request.getfixturevalue(user_fixture))
    url = reverse("redemption:audit_log")
    by_action = client.get(url, {"action": "code.invalidate"})
    assert {r.record.action for r in by_action.context["table"].rows} == {"code.invalidate"}
    spelled = data["invalid"].scan_code.lower().replace("-", " ")
    by_code = client.get(url, {"scan_code": spelled}, follow=True)
    assert [r.record.scan_code for r in by_code.context["table"].rows] == [
        data["invalid"].scan_code
    ]


def test_admin_creates_a_key_sees_the_secret_once_and_revokes_it(client, admin_user):
    _login(client, admin_user)
    url = reverse("redemption:server_keys")
    created = client.post(
        url, {"name": "web shop", "scopes": list(rules.SERVER_KEY_SCOPES)}, follow=True
    )
    secret = created.context["secret"]
    assert secret.startswith("rk_") and secret.encode() in created.content
    assert created["Cache-Control"] == "no-store"
    again = client.get(url)
    assert secret.encode() not in again.content
    key = ServerKey.objects.get()
    client.post(reverse("redemption:server_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None


# --- sign-in ------------------------------------------------------------------------------------


def test_password_change(client, viewer_user):
    _login(client, viewer_user)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "pw-vera-viewer-123!",
            "new_password1": "a-much-better-pass-42",
            "new_password2": "a-much-better-pass-42",
        },
        follow=True,
    )
    assert "Your password has been changed." in _messages(response)
    viewer_user.refresh_from_db()
    assert viewer_user.check_password("a-much-better-pass-42")


# --- escaping -----------------------------------------------------------------------------------


def test_hostile_strings_are_escaped_on_every_page(client, admin_user, data):
    _login(client, admin_user)
    for url in _read_pages(data):
        body = client.get(url).content.decode()
        assert "<script>window.__xss" not in body, url
        assert "<img src=x" not in body, url


def test_the_dashboard_chart_has_a_bar_per_day(client, viewer_user, data):
    _login(client, viewer_user)
    page = client.get(reverse("redemption:dashboard"))
    assert page.content.decode().count('<rect class="bar') == 30
    # populate() writes codes in states, not redemption events: the chart counts the events.
    assert sum(n for _, n in page.context["series"]) == 0
