"""Outages in one process: the portal's 503 page, the job page after a take-over.

(The API's side: tests/api/test_outages.py; real processes and a real PostgreSQL stopped and
started: test_faults.py.)"""

import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from redemption.models import Job
from redemption.services import bulk
from redemption.services.bulk import leases
from tests.api.test_errors import _database_unreachable
from tests.factories import CodeTypeFactory

CODES = "/api/v1/server/codes"
CLIENT_REDEEM = "/api/v1/client/redeem"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the portal while the database is unreachable ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_portal_answers_its_own_503_page_while_the_database_is_unreachable(ops_user, tmp_path):
    client = Client()
    client.force_login(ops_user)
    assert client.get("/").status_code == 200

    with _database_unreachable(tmp_path):
        down = client.get("/")
        lookup = client.get("/monitoring/redemption-codes/?q=ABCD")

    for response in (down, lookup):
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert "Temporarily unavailable" in response.content.decode()
        assert "cannot reach its database" in response.content.decode()
    # It comes back with no restart.
    assert client.get("/").status_code == 200


# --- the job page shows take-overs -------------------------------------------------------------


@pytest.mark.django_db
def test_the_job_page_shows_attempts_and_which_worker_held_the_job(client, ops, ops_user, settings):
    settings.JOB_BATCH_SIZE = 5
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=ops, code_type_name=ct.name, quantity=20)
    first = leases.job_claim(job.pk, worker="web-1.example:4242")
    assert first is not None
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    bulk.run_next_job(worker="worker-2.example:777")
    client.force_login(ops_user)

    page = client.get(f"/jobs/{job.pk}/").content.decode()

    assert 'data-testid="job-attempts">2 of at most 3' in page
    assert "web-1.example:4242" in page
    assert "worker-2.example:777" in page
    assert "taken over" in page
