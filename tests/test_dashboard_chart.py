"""The dashboard's redemptions-per-day chart counts redemption events, per type, with a CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from redemption import selectors
from redemption.actors import Actor, Profile
from redemption.models import AuditEvent, State
from redemption.services import code_reset, redeem, shared_redemption_delete
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def _redeem(scan_code: str, profile: str = "p-1") -> None:
    redeem(actor=SYSTEM, profile=Profile(id=profile), scan_code=scan_code)


def _fulfilment(ct_name: str, state: str, *, at=None, shared: bool = False) -> None:
    """The audit event a fulfilment reply writes (services.fulfilment_replies)."""
    AuditEvent.objects.create(
        at=at or timezone.now(),
        actor_kind="system",
        action="shared.fulfilment" if shared else "code.fulfilment",
        code_type_name=ct_name,
        details={"attempt": 1, "state": state, "errorCode": None},
    )


@pytest.fixture
def redeemed():
    """Two personal redeems and one shared redeem today, one fulfilment success, one failure."""
    personal = CodeTypeFactory(name="gift")
    a, b = (CodeFactory(code_type=personal, state=State.AVAILABLE) for _ in range(2))
    _redeem(a.scan_code)
    _redeem(b.scan_code, "p-2")
    shared = SharedCodeTypeFactory(name="free", scan_code="FREE-STUFF")
    _redeem("FREESTUFF", "p-3")
    _fulfilment("gift", State.REDEEMED)
    _fulfilment("gift", State.FAILED)  # a failed reply redeemed nothing
    _fulfilment("free", State.REDEEMED, at=timezone.now() - timedelta(days=40))  # too old
    return {"personal": personal, "shared": shared, "codes": (a, b)}


def test_the_chart_counts_redemption_events_and_resets_do_not_rewrite_them(
    redeemed, ops_user, django_assert_num_queries
):
    with django_assert_num_queries(1):
        series = selectors.redemptions_per_day(days=30)
    assert len(series) == 30 and series[-1][0] == timezone.now().date()
    assert series[-1][1] == 4 and sum(n for _, n in series) == 4
    # Putting a code back in play and deleting a shared redemption leave history alone.
    code_reset(actor=Actor.staff(ops_user), scan_code=redeemed["codes"][0].scan_code)
    shared_redemption_delete(actor=Actor.staff(ops_user), code_type_name="free", profile_id="p-3")
    assert sum(n for _, n in selectors.redemptions_per_day(days=30)) == 4


def test_the_chart_counts_one_type_when_asked(redeemed):
    assert sum(n for _, n in selectors.redemptions_per_day(code_type_name="gift")) == 3
    assert sum(n for _, n in selectors.redemptions_per_day(code_type_name="free")) == 1
    assert sum(n for _, n in selectors.redemptions_per_day(code_type_name="nope")) == 0


def test_the_dashboard_draws_the_chosen_type(client, viewer_user, redeemed):
    client.force_login(viewer_user)
    everything = client.get(reverse("redemption:dashboard"))
    assert everything.context["chart"]["total"] == 4
    one = client.get(reverse("redemption:dashboard"), {"code_type": "free"})
    assert one.context["chart"]["total"] == 1
    assert one.context["chart_type"] == "free"
    body = one.content.decode()
    assert body.count('<rect class="bar') == 30
    assert 'href="/redemptions-per-day.csv?code_type=free"' in body


def test_an_unknown_type_is_said_on_the_page_and_the_chart_counts_every_type(
    client, viewer_user, redeemed
):
    client.force_login(viewer_user)
    response = client.get(reverse("redemption:dashboard"), {"code_type": "<b>nope</b>"})
    assert response.status_code == 200
    assert response.context["chart"]["total"] == 4
    said = [str(m) for m in response.context["messages"]]
    assert said == ["No code type has that name; the chart counts every type."]
    refused = client.get(reverse("redemption:redemptions_csv"), {"code_type": "nope"})
    assert refused.status_code == 302 and refused["Location"] == reverse("redemption:dashboard")


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_numbers_download_as_csv_with_formulas_neutralised(client, viewer_user):
    ct = CodeTypeFactory(name="-cmd")
    code = CodeFactory(code_type=ct, state=State.AVAILABLE)
    _redeem(code.scan_code)
    client.force_login(viewer_user)
    response = client.get(reverse("redemption:redemptions_csv"), {"code_type": "-cmd"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-store"
    rows = _csv(response)
    assert rows[0] == ["day", "codeType", "redemptions"]
    assert len(rows) == 31
    assert rows[-1] == [f"{timezone.now():%Y-%m-%d}", "'-cmd", "1"]
    assert all(row[2] == "0" for row in rows[1:-1])
    every = _csv(client.get(reverse("redemption:redemptions_csv")))
    assert every[-1][1:] == ["all", "1"]


def test_the_csv_needs_a_signed_in_staff_user(client):
    response = client.get(reverse("redemption:redemptions_csv"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.postgres
def test_the_chart_reads_only_the_partial_index_of_redemption_events(redeemed):
    """The selector's own SQL, explained with sequential scans off: the planner must be able to
    answer it from the partial index alone (its predicate is the query's filter)."""
    with CaptureQueriesContext(connection) as ctx:
        selectors.redemptions_per_day(days=30)
    (query,) = ctx.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using audit_redemption_at" in plan, plan
