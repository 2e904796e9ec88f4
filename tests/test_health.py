"""Probes and the JSON 404 for unknown API paths."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redemption.records import ts


@pytest.mark.django_db
def test_probes_answer_get(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_probes_refuse_writes(client):
    assert client.post("/healthz").status_code == 405


def test_unknown_api_paths_answer_with_the_error_envelope(client):
    response = client.get("/api/v2/anything")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_timestamps_are_utc_with_milliseconds_and_z():
    assert ts(datetime(1, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "0001-01-02T03:04:05.678Z"
    assert ts(None) is None


_OFFSETS = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)


_MOMENTS = st.datetimes(datetime(2, 1, 1), datetime(9998, 1, 1), timezones=_OFFSETS)


@given(_MOMENTS)
def test_any_moment_is_written_in_utc_to_the_millisecond_truncated(moment):
    u = moment.astimezone(UTC)
    expected = (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )
    assert ts(moment) == expected
