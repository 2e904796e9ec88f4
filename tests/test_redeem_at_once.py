"""The one-statement redeem (PostgreSQL) answers exactly what the full redeem answers.

Every scenario is built twice, once redeemed with the one-statement path allowed and once with
it switched off; the answer (record or error), the code row and the audit trail must match.
On SQLite both runs take the full path; the statement-count test says which path ran.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from redemption import exceptions as exc
from redemption import ratelimit
from redemption.actors import Actor, Profile
from redemption.braincloud.records import wire_record
from redemption.db import redeem_at_once
from redemption.models import AuditEvent, Code, RedeemFailure, ServerKey, State
from redemption.records import code_record
from redemption.services import keys, redeem
from tests.conftest import _clear_cache
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory
from tests.fulfilment import DONE, SYSTEM, TX, add_code, make_type

pytestmark = pytest.mark.django_db

ADMIN = Actor.system("test")  # may manage server keys
ME, OTHER = Profile("p-me", "Me 'quoted'"), Profile("p-other")
INFO = {"note": "it's ☃", "nested": [1, None, True]}


def _plain() -> dict[str, Any]:
    return {"scan_code": CodeFactory().scan_code}


def _sloppy() -> dict[str, Any]:
    CodeFactory(scan_code="OIL0-1234-ABCD")
    return {"scan_code": "oil0 1234 abcd"}


def _with_info() -> dict[str, Any]:
    return {"scan_code": CodeFactory().scan_code, "custom_redemption_info": INFO}


def _in_state(state: State, **fields: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"scan_code": CodeFactory(state=state, **fields).scan_code}


def _type(**fields: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"scan_code": CodeFactory(code_type=CodeTypeFactory(**fields)).scan_code}


def _named(right: bool) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        code = CodeFactory()
        name = code.code_type.name if right else CodeTypeFactory().name
        return {"scan_code": code.scan_code, "code_type_name": name}

    return build


def _unknown_type() -> dict[str, Any]:
    return {"scan_code": CodeFactory().scan_code, "code_type_name": "no-such-type"}


def _shared() -> dict[str, Any]:
    return {"scan_code": SharedCodeTypeFactory().scan_code}


def _unknown_code() -> dict[str, Any]:
    return {"scan_code": "ZZZZ-ZZZZ-ZZZZ"}


def _limited(settings: Any) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        settings.REDEEM_MAX_FAILED_PER_PROFILE = 2
        found = ratelimit.buckets(profile_id=ME.id, client_ip=None)
        ratelimit.record_failure(found)
        ratelimit.record_failure(found)
        return {"scan_code": CodeFactory().scan_code}

    return build


def _limited_ip(settings: Any) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        settings.REDEEM_MAX_FAILED_PER_IP = 1
        ratelimit.record_failure(ratelimit.buckets(profile_id="p-elsewhere", client_ip="10.0.0.9"))
        return {"scan_code": CodeFactory().scan_code, "client_ip": "10.0.0.9"}

    return build


def _minted_by(revoked: bool, expired: bool = False) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        key, _ = keys.server_key_create(actor=ADMIN, name="minter")
        if revoked:
            keys.server_key_revoke(actor=ADMIN, reference=key.prefix)
        if expired:
            type(key).objects.filter(pk=key.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        return {"scan_code": CodeFactory().scan_code, "minting_key_id": key.pk}

    return build


def _scenarios(settings: Any) -> dict[str, Callable[[], dict[str, Any]]]:
    now = timezone.now()
    return {
        "available": _plain,
        "sloppy spelling": _sloppy,
        "custom info": _with_info,
        "inactive": _in_state(State.INACTIVE),
        "invalidated": _in_state(State.INVALIDATED),
        "redeemed by self": _in_state(
            State.REDEEMED, redeemed_by_profile_id=ME.id, redeemed_at=now
        ),
        "redeemed by other": _in_state(
            State.REDEEMED, redeemed_by_profile_id=OTHER.id, redeemed_at=now
        ),
        "disabled type": _type(is_disabled=True),
        "archived type": _type(archived_at=now),
        "not yet valid": _type(valid_start=now + timedelta(days=1)),
        "expired": _type(valid_end=now - timedelta(seconds=1)),
        "window open": _type(valid_start=now - timedelta(days=1), valid_end=now + timedelta(1)),
        "named type": _named(True),
        "other type named": _named(False),
        "unknown type named": _unknown_type,
        "shared code": _shared,
        "unknown code": _unknown_code,
        "profile at its limit": _limited(settings),
        "ip at its limit": _limited_ip(settings),
        "live minting key": _minted_by(revoked=False),
        "revoked minting key": _minted_by(revoked=True),
        "expired minting key": _minted_by(revoked=False, expired=True),
    }


SCENARIOS = list(_scenarios(None))  # names only, for parametrize


def _outcome(kwargs: dict[str, Any]) -> tuple[Any, ...]:
    try:
        result = redeem(actor=Actor.profile(ME.id, ME.name), profile=ME, **kwargs)
    except exc.RedemptionError as error:
        return ("error", type(error).__name__, error.code, str(error))
    record = code_record(result.record)
    for moving in (
        "redemptionCodeId",
        "scanCode",
        "codeType",
        "redeemedAt",
        "createdAt",
        "updatedAt",
    ):
        record.pop(moving, None)
    return ("ok", record)


def _trail() -> list[tuple[Any, ...]]:
    codes = [
        (c.state, c.redeemed_by_profile_id, c.redeemed_by_profile_name, c.version)
        for c in Code.objects.filter(is_shared_anchor=False).order_by("created_at")
    ]
    events = [
        (e.actor_kind, e.actor_id, e.action, e.profile_id, e.details)
        for e in AuditEvent.objects.filter(action__startswith="code.").order_by("id")
    ]
    return [*codes, *events]


@pytest.mark.parametrize("name", SCENARIOS)
def test_both_paths_give_the_same_answer_and_leave_the_same_rows(name, settings, monkeypatch):
    build = _scenarios(settings)[name]
    seen = []
    for allowed in (True, False):
        monkeypatch.setattr(redeem_at_once, "supported", lambda a=allowed: a and _postgres())
        Code.objects.all().delete()
        ServerKey.objects.all().delete()
        AuditEvent.objects.all().delete()
        RedeemFailure.objects.all().delete()
        _clear_cache()
        seen.append((_outcome(build()), _trail()))
    assert seen[0] == seen[1]


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def test_a_plain_redeem_is_one_statement_on_postgresql_three_elsewhere():
    code = CodeFactory()
    with CaptureQueriesContext(connection) as ctx:
        redeem(actor=Actor.profile(ME.id), profile=ME, scan_code=code.scan_code)
    statements = [q["sql"] for q in ctx.captured_queries]
    if _postgres():
        assert len(statements) == 1, statements
        assert statements[0].startswith(f"SELECT * FROM {redeem_at_once.FUNCTION}(")
    else:
        assert len(statements) >= 3, statements
    code.refresh_from_db()
    assert code.state == State.REDEEMED
    assert AuditEvent.objects.filter(action="code.redeem", target_id=str(code.pk)).count() == 1


def test_the_answer_of_a_redeem_reads_nothing_more():
    """The function returns only the type fields the answer reads; reading another would
    cost a query of its own (a deferred field), so the answers must not."""
    code = CodeFactory()
    result = redeem(actor=Actor.profile(ME.id), profile=ME, scan_code=code.scan_code)
    with CaptureQueriesContext(connection) as ctx:
        record = code_record(result.record)
        wire = wire_record(result.record, app_id="app")
    assert ctx.captured_queries == []
    assert record["codeType"] == wire["codeType"] == code.code_type.name
    assert record["codeUseType"] == code.code_type.use_type
    assert record["codeState"] == State.REDEEMED


@pytest.mark.postgres
@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))))
def test_text_array_literals_read_back_as_the_strings_they_hold(values):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [redeem_at_once._text_array(values)])
        assert cursor.fetchone()[0] == values


@TX
def test_a_type_with_fulfilment_takes_the_full_path_and_calls_its_webhook(webhook):
    webhook.behaviour = lambda request: (200, DONE)
    ct = make_type(webhook.url)

    result = redeem(actor=SYSTEM, profile=ME, scan_code=add_code(ct).scan_code)

    assert result.record.state == State.REDEEMED
    assert webhook.calls == 1


def test_a_refused_redeem_falls_back_to_the_full_path_once():
    code = CodeFactory(state=State.INACTIVE)
    with CaptureQueriesContext(connection) as ctx, pytest.raises(exc.CodeNotActiveError):
        redeem(actor=Actor.profile(ME.id), profile=ME, scan_code=code.scan_code)
    at_once = [q for q in ctx.captured_queries if redeem_at_once.FUNCTION in q["sql"]]
    assert len(at_once) == (1 if _postgres() else 0)


def _function_comment() -> list[tuple[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(oid, 'pg_proc') FROM pg_proc WHERE proname = %s",
            [redeem_at_once.FUNCTION],
        )
        return cursor.fetchall()


@pytest.mark.postgres
def test_migrate_left_the_function_as_the_models_make_it_and_install_remakes_a_stale_one():
    assert redeem_at_once.install() is False, "migrate should have installed the current one"
    (digest,) = _function_comment()

    with connection.cursor() as cursor:
        cursor.execute(f"COMMENT ON FUNCTION {redeem_at_once.FUNCTION} IS 'an older model'")
    assert redeem_at_once.install() is True
    assert _function_comment() == [digest]

    with connection.cursor() as cursor:
        cursor.execute(f"DROP FUNCTION {redeem_at_once.FUNCTION}")
    assert redeem_at_once.install() is True
    code = CodeFactory()
    redeem(actor=Actor.profile(ME.id), profile=ME, scan_code=code.scan_code)
    code.refresh_from_db()
    assert code.state == State.REDEEMED
