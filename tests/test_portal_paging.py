"""Portal tables read bounded pages: per_page is clamped, big tables page by key, not OFFSET."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from redemption import rules
from redemption.models import AuditEvent, Job
from tests.factories import CodeFactory, CodeTypeFactory

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=3)


def _audit_events(n: int) -> list[int]:
    AuditEvent.objects.bulk_create(
        AuditEvent(
            # Pairs share a timestamp: the id breaks the tie.
            at=T0 + timedelta(seconds=i // 2),
            actor_kind="system",
            actor_label="test",
            action="code.add",
        )
        for i in range(n)
    )
    return list(AuditEvent.objects.order_by("-at", "-id").values_list("pk", flat=True))


def _jobs(n: int) -> list[str]:
    ct = CodeTypeFactory()
    Job.objects.bulk_create(
        Job(kind="generate", code_type=ct, code_type_name=ct.name, created_at=T0 + timedelta(i))
        for i in range(n)
    )
    return [
        str(pk) for pk in Job.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    ]


def _link(response, rel: str) -> str | None:
    """The pager link `rel` of a page, as a URL (the links are query strings of the page)."""
    match = re.search(rf'rel="{rel}" href="([^"]+)"', response.content.decode())
    if not match:
        return None
    return urljoin(response.wsgi_request.path, match.group(1).replace("&amp;", "&"))


def _audit_ids(response) -> list[int]:
    return [row.record.pk for row in response.context["table"].rows]


def test_per_page_is_clamped_to_200(client, viewer_user):
    _audit_events(250)
    _jobs(230)
    client.force_login(viewer_user)

    audit = client.get(reverse("redemption:audit_log") + "?per_page=100000000")
    jobs = client.get(reverse("redemption:job_list") + "?per_page=100000000")
    small = client.get(reverse("redemption:audit_log") + "?per_page=7")
    junk = client.get(reverse("redemption:audit_log") + "?per_page=lots")

    assert len(audit.context["table"].rows) == rules.PORTAL_PER_PAGE_MAX == 200
    assert len(jobs.context["table"].rows) == 200
    assert len(small.context["table"].rows) == 7
    assert len(junk.context["table"].rows) == 50  # the default


def test_the_audit_log_pages_by_key_both_ways_without_offset(client, viewer_user):
    expected = _audit_events(23)
    client.force_login(viewer_user)
    url = reverse("redemption:audit_log") + "?per_page=5"
    seen, pages = [], []

    while url:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert not [q for q in ctx.captured_queries if "OFFSET" in q["sql"].upper()]
        pages.append(url)
        seen += _audit_ids(response)
        url = _link(response, "next")

    assert seen == expected
    assert len(pages) == 5
    back = client.get(_link(client.get(pages[3]), "prev"))
    assert _audit_ids(back) == expected[10:15]
    assert parse_qs(urlsplit(pages[1]).query)["per_page"] == ["5"]  # the size stays


def test_jobs_page_by_key(client, viewer_user):
    expected = _jobs(9)
    client.force_login(viewer_user)
    url = reverse("redemption:job_list") + "?per_page=4"
    seen = []

    while url:
        response = client.get(url)
        seen += [str(row.record.pk) for row in response.context["table"].rows]
        url = _link(response, "next")

    assert seen == expected


def test_a_page_link_no_list_handed_out_goes_back_to_the_first_page(client, viewer_user):
    _audit_events(3)
    client.force_login(viewer_user)

    response = client.get(reverse("redemption:audit_log") + "?after=forged", follow=True)

    assert response.redirect_chain == [(reverse("redemption:audit_log"), 302)]
    assert "no longer valid" in response.content.decode()


def test_user_monitoring_pages_a_profile_by_key(client, viewer_user):
    codes = [
        CodeFactory(
            state="Redeemed",
            redeemed_by_profile_id="p-many",
            redeemed_at=T0 + timedelta(seconds=i),
        )
        for i in range(130)
    ]
    client.force_login(viewer_user)
    url = reverse("redemption:user_monitoring") + "?profile=p-many"

    first = client.get(url)
    second = client.get(_link(first, "next"))

    newest_first = [str(c.pk) for c in reversed(codes)]
    rows = [str(r.record.pk) for r in first.context["records_table"].rows]
    assert rows == newest_first[:100]
    assert [str(r.record.pk) for r in second.context["records_table"].rows] == newest_first[100:]
    assert _link(second, "next") is None
    assert "130 redeemed of 130 codes touched" in second.content.decode()
