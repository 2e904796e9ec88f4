"""What the Schemathesis run (make fuzz) found, each pinned by a test of its own.

The run requires the OpenAPI document to state every rule the API enforces, and nothing the
API does not: these tests hold the server to the document's rules where they used to differ.
"""

import re

import pytest
from django.test import Client

from redemption import codes, fulfillment, rules
from redemption import exceptions as exc
from redemption.api.validation import Field, FieldError, parse_datetime
from redemption.models import Code
from redemption.services import bulk
from tests.factories import CodeTypeFactory

LONGEST_PREFIX = "A-" * 16 + "ABCDEFGH"  # 24 letters and 16 hyphens: 40 in all


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("algorithm", "details"),
    [("StructuredGuid", None), ("Crockford", {"length": 32, "includeCheck": True})],
)
def test_the_longest_prefix_with_the_longest_code_fits_the_column(ops, algorithm, details):
    ct = CodeTypeFactory()
    assert len(LONGEST_PREFIX) == rules.PREFIX_INPUT_MAX

    _, scan_codes = bulk.codes_generate_inline(
        actor=ops,
        code_type_name=ct.name,
        quantity=3,
        prefix=LONGEST_PREFIX,
        algorithm=algorithm,
        algorithm_details=details,
    )

    assert max(len(s) for s in scan_codes) <= rules.SCAN_CODE_WRITTEN_MAX
    assert Code.objects.filter(code_type=ct).count() == 3  # PostgreSQL's varchar(80) took them
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.codes_generate_inline(
            actor=ops, code_type_name=ct.name, quantity=1, prefix=LONGEST_PREFIX + "-"
        )
    assert list(caught.value.details["fields"]) == ["prefix"]


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("abcd-1234", "ABCD1234"),
        (" \tAB CD-12 34\t ", "ABCD1234"),
        ("ßßßß", None),  # "ß".upper() is "SS": a spelling nobody wrote
        ("ıııı", None),  # dotless i uppercases to I
        ("ABCD\n", None),
        ("ABCD\u00a0", None),
        ("A" * 64 + " " * 16, "A" * 64),
        ("A" * 64 + " " * 17, None),  # 81 characters as written
    ],
)
def test_scan_codes_are_ascii_letters_and_digits_as_the_document_says(spelling, canonical):
    documented = bool(re.search(rules.whole(rules.SCAN_CODE_INPUT_REGEX), spelling)) and (
        len(spelling) <= rules.SCAN_CODE_WRITTEN_MAX  # the document's maxLength
    )

    assert codes.canonical_or_none(spelling) == canonical
    assert documented == (canonical is not None)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-06-01T12:00:00Z", True),
        ("2026-06-01T12:00:00.123456+02:00", True),
        ("1970-01-01T00:30:00+01:00", True),  # 1969 in UTC, as written 1970
        ("2026-02-30T00:00:00Z", False),  # no such day
        ("2026-06-01T12:00Z", False),  # Python reads it; RFC 3339 needs seconds
        ("2026-06-01 12:00:00Z", False),
        ("20260601T120000Z", False),
        ("2026-06-01t12:00:00z", False),
        ("2026-06-01T23:59:60Z", False),
        ("9999-12-31T23:00:00-05:00", False),  # beyond what a UTC datetime holds
        ("1969-12-31T23:59:59Z", False),
    ],
)
def test_timestamps_are_rfc_3339_exactly_as_the_document_says(value, ok):
    try:
        parse_datetime(value)
    except FieldError:
        accepted = False
    else:
        accepted = True
    assert accepted == ok


@pytest.mark.parametrize(("value", "expected"), [(5.0, 5), (5, 5), (1e2, 100)])
def test_an_integer_field_takes_a_whole_number_written_as_a_float(value, expected):
    # JSON Schema's integer: 5.0 is 5.
    assert Field("n", "integer", min=1, max=1000).clean(value, "n") == expected


@pytest.mark.parametrize("value", [5.5, True, "5", float("inf")])
def test_an_integer_field_refuses_what_is_not_a_whole_number(value):
    with pytest.raises(FieldError):
        Field("n", "integer", min=1, max=1000).clean(value, "n")


@pytest.mark.parametrize(
    "url",
    ["http://[/hook", "http://[::1/hook", "https://host:99999/", "https://bücher.example/"],
)
def test_a_webhook_url_no_client_can_take_apart_is_refused_and_never_fails_a_call(url):
    assert not rules.is_webhook_url(url)
    reply = fulfillment.call(url=url, secret="s", payload={}, timeout_seconds=1)

    assert reply.is_transport_failure


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_a_probe_answers_another_method_with_405_not_a_csrf_refusal(path):
    response = Client(enforce_csrf_checks=True).generic("QUERY", path)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_an_async_reply_is_read_as_the_document_says():
    with pytest.raises(ValueError, match="complete"):
        fulfillment.parse_reply({"success": False, "complete": None})
    assert fulfillment.parse_reply({"success": False}).complete is True
    assert fulfillment.parse_reply({"success": False, "errorCode": 5.0}).error_code == "5"
