"""`POST /dispatcherv2` packet by packet: signatures, sizes, sessions, resends, CORS, outages,
sign-in, redeem, the redeemed-codes list and the records on the wire (SPEC §11)."""

import gzip
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from redemption.actors import Actor
from redemption.braincloud import packets
from redemption.braincloud.records import wire_record_of
from redemption.models import Attempt, AuditEvent, Code, State, WireSession
from redemption.services import keys
from redemption.services.braincloud_apps import AppChange, braincloud_app_save
from redemption.services.housekeeping import sweep
from tests.api.test_errors import _database_unreachable
from tests.braincloud_helpers import (
    APP_ID,
    SECRET,
    anonymous,
    external,
    make_app,
    msg,
    packet,
    post,
    redeem,
    responses,
    sig,
    sign_in,
    user_token,
)
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory
from tests.fulfilment import ACCEPTED, add_code, make_type, scan_of

HEARTBEAT = msg("heartbeat", "READ")
GZIP = {"Content-Encoding": "gzip"}
LIST = msg("redemptionCode", "GET_REDEEMED_CODES", {})


@pytest.fixture
def app(db):
    return make_app(allow_anonymous=True)


@pytest.fixture
def client() -> Client:
    return Client()


def _reasons(entries):
    return [(e["status"], e.get("reason_code")) for e in entries]


# --- transport: signature, body, size, CORS, methods --------------------------------------------


def test_a_signed_packet_is_parsed_as_json_whatever_its_content_type(app, client):
    body = packet([HEARTBEAT, HEARTBEAT], session_id=sign_in(client), packet_id=3)

    response = post(client, body)

    assert response.status_code == 200
    assert json.loads(response.content) == {
        "packetId": 3,
        "responses": [{"status": 200, "data": None}, {"status": 200, "data": None}],
    }


@pytest.mark.parametrize(
    ("secret", "app_id", "signature"),
    [
        ("wrong-secret", APP_ID, None),  # signed with another secret
        (SECRET, "99999", None),  # an app that does not exist
        (SECRET, APP_ID, ""),  # no X-SIG
        (SECRET, APP_ID, "0" * 32),  # a made-up X-SIG
    ],
)
def test_a_bad_signature_answers_200_with_one_40840_entry_per_message(
    app, client, secret, app_id, signature
):
    body = packet([anonymous(), HEARTBEAT])

    entries = responses(post(client, body, secret=secret, app_id=app_id, signature=signature))

    assert _reasons(entries) == [(403, 40840), (403, 40840)]
    assert WireSession.objects.count() == 0


def test_the_signature_is_taken_over_the_exact_bytes_with_uppercase_hex_accepted(app, client):
    body = packet([anonymous("ünïcode-id")])

    assert responses(post(client, body, signature=sig(body).upper()))[0]["status"] == 200


def test_a_disabled_app_is_refused_like_an_unknown_one(app, client):
    braincloud_app_save(actor=Actor.system("test"), app_id=APP_ID, change=AppChange(enabled=False))

    assert _reasons(responses(post(client, packet([anonymous()])))) == [(403, 40840)]


def test_a_packet_over_one_mib_is_read_and_answered_with_413_entries(app, client):
    filler = "x" * (packets.MAX_PACKET_BYTES + 10)
    body = packet([redeem("ABCD"), msg("heartbeat", "READ", {"pad": filler})])

    entries = responses(post(client, body))

    assert _reasons(entries) == [(413, 40830), (413, 40830)]


def test_an_oversized_body_that_is_no_json_gets_one_413_entry(app, client):
    body = b"{" * (packets.MAX_PACKET_BYTES + 1)

    assert _reasons(responses(post(client, body))) == [(413, 40830)]


def test_a_body_too_big_to_count_its_messages_gets_one_413_entry(app, client):
    filler = "x" * (packets.COUNT_MAX_BYTES + 10)
    body = packet([redeem("ABCD"), msg("heartbeat", "READ", {"pad": filler})])

    assert _reasons(responses(post(client, body))) == [(413, 40830)]


def test_a_gzipped_packet_is_signed_over_its_plain_json(app, client):
    plain = packet([anonymous("zipped")])
    zipped = gzip.compress(plain)

    entries = responses(post(client, zipped, signature=sig(plain), **GZIP))
    bomb = gzip.compress(b" " * (packets.MAX_PACKET_BYTES + 1))
    too_big = responses(post(client, bomb, signature=sig(b""), **GZIP))
    broken = responses(post(client, zipped[:-9], signature=sig(plain), **GZIP))

    assert _reasons(entries) == [(200, None)]
    assert _reasons(too_big) == [(413, 40830)]
    assert _reasons(broken) == [(400, 40660)]


def test_a_body_that_is_no_packet_gets_one_400_entry(app, client):
    assert _reasons(responses(post(client, b"not json"))) == [(400, 40660)]
    assert _reasons(responses(post(client, b'{"messages": 5}'))) == [(400, 40660)]


def test_malformed_and_unknown_messages_get_their_own_entries_in_order(app, client):
    session = sign_in(client)
    body = packet(
        [HEARTBEAT, "oops", msg("script", "RUN", {}), msg("heartbeat", "READ", [1])],  # type: ignore[list-item]
        session_id=session,
        packet_id=1,
    )

    entries = responses(post(client, body))

    assert _reasons(entries) == [(200, None), (400, 40660), (400, 40842), (400, 40660)]


def test_options_answers_the_cors_preflight(app, client):
    response = client.options(
        "/dispatcherv2",
        headers={"Origin": "https://game.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Headers"] == "Content-Type, X-SIG, X-APPID"
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_cors_names_only_the_configured_origins(app, client, settings):
    settings.BRAINCLOUD_CORS_ORIGINS = ["https://game.example"]

    allowed = post(client, packet([anonymous()]), Origin="https://game.example")
    other = post(client, packet([anonymous()]), Origin="https://evil.example")

    assert allowed["Access-Control-Allow-Origin"] == "https://game.example"
    assert "Access-Control-Allow-Origin" not in other


def test_other_methods_are_refused_without_reaching_a_session(app, client):
    assert client.get("/dispatcherv2").status_code == 405


# --- sign-in -----------------------------------------------------------------------------------


def test_external_sign_in_takes_a_user_token_minted_for_that_profile(app, client):
    [entry] = responses(post(client, packet([external("p-7", user_token("p-7", "Bo"))])))

    assert entry["status"] == 200
    data = entry["data"]
    assert set(data) == {
        "sessionId",
        "profileId",
        "playerName",
        "playerSessionExpiry",
        "newUser",
        "server_time",
    }
    assert (data["profileId"], data["playerName"], data["playerSessionExpiry"]) == (
        "p-7",
        "Bo",
        1200,
    )
    assert abs(data["server_time"] - timezone.now().timestamp() * 1000) < 60_000


@pytest.mark.parametrize(
    "token",
    [
        "ut_garbage",  # not a token
        "",  # none
        "other-profile",  # a genuine token of another profile
        "revoked-key",  # minted by a key revoked since
    ],
)
def test_a_bad_external_token_is_wire_bad_credentials(app, client, token):
    if token == "other-profile":
        token = user_token("p-8")
    elif token == "revoked-key":
        key, _ = keys.server_key_create(actor=Actor.system("t"), name="backend")
        token = keys.user_token_mint(actor=Actor.server_key(key), profile_id="p-7").token
        keys.server_key_revoke(actor=Actor.system("t"), reference=str(key.pk))

    assert _reasons(responses(post(client, packet([external("p-7", token)])))) == [(403, 40843)]
    assert WireSession.objects.count() == 0


def test_anonymous_ids_map_to_one_stable_profile(app, client):
    first = responses(post(client, packet([anonymous("device-1")])))[0]["data"]
    again = responses(post(client, packet([anonymous("device-1")])))[0]["data"]
    other = responses(post(client, packet([anonymous("device-2")])))[0]["data"]

    assert first["profileId"] == again["profileId"] != other["profileId"]
    assert (first["newUser"], again["newUser"]) == ("true", "false")


def test_anonymous_sign_in_without_force_create_needs_a_known_id(app, client):
    entries = responses(post(client, packet([anonymous("new-device", force_create=False)])))

    assert _reasons(entries) == [(403, 40843)]


@pytest.mark.parametrize("auth_type", ["Universal", "Email", None])
def test_other_authentication_types_are_not_allowed(app, client, auth_type):
    message = external("p-7", user_token("p-7"), auth_type=auth_type)

    assert _reasons(responses(post(client, packet([message])))) == [(403, 40841)]


def test_anonymous_is_not_allowed_unless_the_app_enables_it(db, client):
    make_app(allow_anonymous=False)

    assert _reasons(responses(post(client, packet([anonymous()])))) == [(403, 40841)]


def test_anonymous_sign_ins_are_limited_per_client_ip(app, client, settings):
    settings.WIRE_ANON_PER_IP_PER_MINUTE = 2
    other_ip = Client(REMOTE_ADDR="203.0.113.9")

    answers = [responses(post(client, packet([anonymous(f"d-{i}")])))[0] for i in range(3)]
    elsewhere = responses(post(other_ip, packet([anonymous("d-9")])))[0]

    assert [a["status"] for a in answers] == [200, 200, 429]
    assert answers[2]["reason_code"] == 40765
    assert elsewhere["status"] == 200


# --- sessions ----------------------------------------------------------------------------------


def test_calls_without_a_session_get_40304_and_sign_in_needs_none(app, client):
    no_session = responses(post(client, packet([redeem("ABCD"), HEARTBEAT])))
    unknown = responses(post(client, packet([HEARTBEAT], session_id="made-up")))

    assert _reasons(no_session) == [(403, 40304), (403, 40304)]
    assert _reasons(unknown) == [(403, 40304)]


def test_a_session_slides_and_expires_after_its_lifetime_of_quiet(app, client):
    session_id = sign_in(client)
    row = WireSession.objects.get()
    WireSession.objects.filter(pk=row.pk).update(expires_at=timezone.now() + timedelta(seconds=5))

    assert _reasons(
        responses(post(client, packet([HEARTBEAT], session_id=session_id, packet_id=1)))
    ) == [(200, None)]
    row.refresh_from_db()
    assert row.expires_at > timezone.now() + timedelta(seconds=1190)  # slid to 1200 s from now

    WireSession.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = responses(post(client, packet([HEARTBEAT], session_id=session_id, packet_id=2)))
    assert _reasons(expired) == [(403, 40303)]


def test_a_session_is_bound_to_its_app(app, client):
    session_id = sign_in(client)
    make_app(app_id="other-app", secret="other-secret-1")

    body = packet([HEARTBEAT], session_id=session_id, packet_id=1)
    entries = responses(post(client, body, app_id="other-app", secret="other-secret-1"))

    assert _reasons(entries) == [(403, 40304)]


def test_logout_ends_the_session(app, client):
    session_id = sign_in(client)

    bye = responses(
        post(client, packet([msg("playerState", "LOGOUT", {})], session_id=session_id, packet_id=1))
    )
    after = responses(post(client, packet([HEARTBEAT], session_id=session_id, packet_id=2)))

    assert _reasons(bye) == [(200, None)]
    assert _reasons(after) == [(403, 40356)]


def test_revoking_the_key_that_minted_the_sign_in_token_expires_the_session(app, client):
    key, _ = keys.server_key_create(actor=Actor.system("t"), name="backend")
    token = keys.user_token_mint(actor=Actor.server_key(key), profile_id="p-7").token
    [signed_in] = responses(post(client, packet([external("p-7", token)])))
    session_id = signed_in["data"]["sessionId"]
    live = responses(post(client, packet([HEARTBEAT], session_id=session_id, packet_id=1)))

    keys.server_key_revoke(actor=Actor.system("t"), reference=str(key.pk))
    dead = responses(post(client, packet([HEARTBEAT, LIST], session_id=session_id, packet_id=2)))

    assert _reasons(live) == [(200, None)]
    assert _reasons(dead) == [(403, 40303), (403, 40303)]


@pytest.mark.parametrize(
    "change",
    [AppChange(rotate_secret=True), AppChange(enabled=False), AppChange(secret="new-secret-9")],
)
def test_rotating_the_secret_or_disabling_the_app_ends_its_sessions(app, client, change):
    sign_in(client, "p-1")
    sign_in(client, "p-2")
    assert WireSession.objects.count() == 2

    braincloud_app_save(actor=Actor.system("test"), app_id=APP_ID, change=change)

    assert WireSession.objects.count() == 0


def test_renaming_the_app_keeps_its_sessions(app, client):
    sign_in(client)
    braincloud_app_save(actor=Actor.system("test"), app_id=APP_ID, change=AppChange(name="Game"))
    assert WireSession.objects.count() == 1


# --- resends -----------------------------------------------------------------------------------


def test_a_resent_packet_gets_the_stored_answer_and_runs_nothing_again(app, client):
    code = CodeFactory(scan_code="K7QM-3XJ9-W2PA")
    session_id = sign_in(client)
    body = packet([redeem("k7qm3xj9w2pa")], session_id=session_id, packet_id=5)

    first = post(client, body)
    again = post(client, body)

    assert first.content == again.content
    assert _reasons(responses(again)) == [(200, None)]
    assert AuditEvent.objects.filter(action="code.redeem").count() == 1
    code.refresh_from_db()
    assert code.state == State.REDEEMED
    # A new packet id runs again (gaps are fine): now the code is redeemed by this profile.
    later = responses(
        post(client, packet([redeem("k7qm3xj9w2pa")], session_id=session_id, packet_id=9))
    )
    assert _reasons(later) == [(400, 40402)]


def test_a_resend_while_the_first_copy_still_runs_is_told_to_retry(app, client):
    session_id = sign_in(client)
    row = WireSession.objects.get()
    WireSession.objects.filter(pk=row.pk).update(
        last_packet_id=4, last_response=None, last_packet_at=timezone.now()
    )
    body = packet([HEARTBEAT], session_id=session_id, packet_id=4)

    busy = post(client, body)

    assert busy.status_code == 503
    assert busy["Retry-After"] == "1"
    # A first copy that died long ago (no answer after RESEND_TAKEOVER_SECONDS) is run again.
    stale = timezone.now() - timedelta(seconds=packets.RESEND_TAKEOVER_SECONDS + 1)
    WireSession.objects.filter(pk=row.pk).update(last_packet_at=stale)
    assert _reasons(responses(post(client, body))) == [(200, None)]


# --- operations ----------------------------------------------------------------------------------


def test_redeem_answers_brainclouds_record_and_the_section_10_reason_codes(app, client):
    ct = CodeTypeFactory(name="xmas-2026")
    CodeFactory(code_type=ct, scan_code="K7QM-3XJ9-W2PA")
    CodeFactory(code_type=ct, scan_code="HT4N-8RCV-E6ZB", state=State.INACTIVE)
    session_id = sign_in(client, "p-1")
    body = packet(
        [
            redeem(" k7qm-3xj9 w2pa", "xmas-2026"),
            redeem("K7QM-3XJ9-W2PA"),
            redeem("ZZZZ-ZZZZ-ZZZZ"),
            redeem("HT4N-8RCV-E6ZB", "no-such-type"),
            redeem("HT4N-8RCV-E6ZB"),
            msg("redemptionCode", "REDEEM_CODE", {}),
        ],
        session_id=session_id,
        packet_id=1,
    )

    entries = responses(post(client, body))

    assert _reasons(entries) == [
        (200, None),
        (400, 40402),
        (400, 40395),
        (400, 40399),
        (400, 40398),
        (400, 40660),
    ]
    record = entries[0]["data"]
    assert record["gameId"] == APP_ID
    assert record["codeType"] == "xmas-2026"
    assert record["redeemedByProfileId"] == "p-1"
    for name in ("createdAt", "redeemedAt", "updatedAt"):
        assert isinstance(record[name], int)
    assert record["activatedAt"] is None and record["invalidatedAt"] is None
    assert "currentAttempt" not in record and "status" not in record
    assert entries[1]["severity"] == "ERROR" and entries[1]["status_message"]


def test_failed_redeems_are_limited_as_on_the_json_api(app, client, settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 2
    CodeFactory(scan_code="K7QM-3XJ9-W2PA")
    session_id = sign_in(client)
    body = packet(
        [redeem("ZZZZ-ZZZZ-ZZZ1"), redeem("ZZZZ-ZZZZ-ZZZ2"), redeem("K7QM-3XJ9-W2PA")],
        session_id=session_id,
        packet_id=1,
    )

    assert _reasons(responses(post(client, body))) == [(400, 40395), (400, 40395), (429, 40765)]


def test_redeemed_codes_lists_the_profiles_redeemed_codes_newest_first(app, client):
    ct = CodeTypeFactory(name="xmas-2026")
    shared = SharedCodeTypeFactory(name="promo", scan_code="FREESTUFF")
    CodeFactory(code_type=ct, scan_code="K7QM-3XJ9-W2PA")
    CodeFactory(code_type=ct, scan_code="HT4N-8RCV-E6ZB")
    CodeFactory(
        code_type=ct,
        scan_code="M2DK-5YFG-Q9TS",
        state=State.REDEEMED,
        redeemed_by_profile_id="p-other",
        redeemed_at=timezone.now(),
    )
    session_id = sign_in(client, "p-1")
    for n, scan_code in enumerate(["K7QM-3XJ9-W2PA", "FREESTUFF", "HT4N-8RCV-E6ZB"]):
        entries = responses(
            post(client, packet([redeem(scan_code)], session_id=session_id, packet_id=n + 1))
        )
        assert entries[0]["status"] == 200, entries

    body = packet(
        [
            LIST,
            msg("redemptionCode", "GET_REDEEMED_CODES", {"codeType": "xmas-2026"}),
            msg("redemptionCode", "GET_REDEEMED_CODES", {"codeType": "nope"}),
        ],
        session_id=session_id,
        packet_id=10,
    )
    everything, of_type, unknown = responses(post(client, body))

    assert [c["scanCode"] for c in everything["data"]["codes"]] == [
        "HT4N-8RCV-E6ZB",
        "FREESTUFF",
        "K7QM-3XJ9-W2PA",
    ]
    assert [c["scanCode"] for c in of_type["data"]["codes"]] == ["HT4N-8RCV-E6ZB", "K7QM-3XJ9-W2PA"]
    assert everything["data"]["codes"][1]["codeUseType"] == "MULTI"
    assert all(c["gameId"] == APP_ID for c in everything["data"]["codes"])
    assert _reasons([unknown]) == [(400, 40399)]
    assert shared.pk


def test_redeemed_codes_stops_at_the_newest_thousand(app, client, django_assert_max_num_queries):
    ct = CodeTypeFactory()
    now = timezone.now()
    Code.objects.bulk_create(
        [
            Code(
                code_type=ct,
                scan_code=f"C{n:07d}",
                canonical=f"C{n:07d}",
                state=State.REDEEMED,
                redeemed_by_profile_id="p-1",
                redeemed_at=now - timedelta(seconds=n),
                created_at=now,
                updated_at=now,
            )
            for n in range(1005)
        ]
    )
    session_id = sign_in(client, "p-1")

    with django_assert_max_num_queries(12):
        [entry] = responses(post(client, packet([LIST], session_id=session_id, packet_id=1)))

    codes = entry["data"]["codes"]
    assert len(codes) == 1000
    assert codes[0]["scanCode"] == "C0000000" and codes[-1]["scanCode"] == "C0000999"


def test_records_with_attempts_carry_a_zero_based_current_attempt_and_status(db):
    now = timezone.now()
    code = CodeFactory(state=State.IN_PROGRESS, current_attempt=2, redeemed_by_profile_id="p-1")
    for n, state in ((1, State.FAILED), (2, State.IN_PROGRESS)):
        Attempt.objects.create(
            code=code,
            attempt=n,
            profile_id="p-1",
            state=state,
            started_at=now,
            deadline_at=now + timedelta(minutes=5),
            response={"success": True, "complete": False} if n == 2 else None,
        )

    record = wire_record_of(code, app_id="app-1")

    assert record["currentAttempt"] == 1
    assert record["status"] == {
        "attempt": 1,
        "attemptedAt": int(now.timestamp() * 1000),
        "attemptedBy": "p-1",
        "attemptState": "IN_PROGRESS",
        "response": {"success": True, "complete": False},
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_a_redeem_left_in_progress_by_its_webhook_carries_attempt_zero(webhook, shared):
    make_app()
    client = Client()
    webhook.behaviour = lambda _r: (200, {**ACCEPTED, "customRedemptionInfo": {"ticket": "T-1"}})
    ct = make_type(webhook.url, shared=shared, is_async=True, timeout=60)
    code = None if shared else add_code(ct)
    session_id = sign_in(client, "p-ann")

    [entry] = responses(
        post(client, packet([redeem(scan_of(ct, code))], session_id=session_id, packet_id=1))
    )

    assert entry["status"] == 200
    record = entry["data"]
    assert record["codeState"] == "InProgress"
    assert record["currentAttempt"] == 0
    assert record["status"]["attempt"] == 0
    assert record["status"]["attemptState"] == "IN_PROGRESS"
    assert record["status"]["attemptedBy"] == "p-ann"
    assert record["status"]["response"] == {**ACCEPTED, "customRedemptionInfo": {"ticket": "T-1"}}
    assert isinstance(record["status"]["attemptedAt"], int)


# --- outages and metrics -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_answers_503_with_retry_after_while_the_database_is_down(tmp_path):
    make_app()
    client = Client()
    session_id = sign_in(client)
    body = packet([HEARTBEAT], session_id=session_id, packet_id=1)

    with _database_unreachable(tmp_path):
        down = post(client, body)

    assert down.status_code == 503
    assert down["Retry-After"] == "5"
    # The client resends the same body once the database is back: it runs then.
    assert _reasons(responses(post(client, body))) == [(200, None)]


def test_wire_messages_are_counted_in_metrics(app, client, settings):
    settings.METRICS_TOKEN = "metrics-token-123"
    session_id = sign_in(client)
    post(client, packet([HEARTBEAT, redeem("ZZZZ-ZZZZ-ZZZZ")], session_id=session_id, packet_id=1))

    text = client.get(
        "/metrics", headers={"Authorization": "Bearer metrics-token-123"}
    ).content.decode()

    assert (
        'redemption_wire_messages_total{endpoint="client",operation="READ",outcome="ok",service="heartbeat"}'
        in text
    )
    assert (
        'redemption_wire_messages_total{endpoint="client",operation="REDEEM_CODE",outcome="error",'
        'service="redemptionCode"}' in text
    )


def test_the_sweep_prunes_sessions_that_ended_over_a_day_ago(app, client):
    sign_in(client, "p-old")
    sign_in(client, "p-new")
    WireSession.objects.filter(profile_id="p-old").update(
        expires_at=timezone.now() - timedelta(days=1, seconds=1)
    )

    report = sweep()

    assert report.wire_sessions_pruned == 1
    assert list(WireSession.objects.values_list("profile_id", flat=True)) == ["p-new"]


@pytest.mark.django_db(transaction=True)
def test_racing_copies_of_one_packet_redeem_once_and_agree(live_server):
    make_app()
    code = CodeFactory(scan_code="K7QM-3XJ9-W2PA")
    session_id = sign_in(Client(), "p-1")
    body = packet([redeem("K7QM-3XJ9-W2PA")], session_id=session_id, packet_id=7)
    port = int(live_server.url.rsplit(":", 1)[1])
    headers = {"X-SIG": sig(body), "X-APPID": APP_ID, "Content-Type": "text/plain"}
    start = threading.Barrier(6)

    def send(_: int) -> tuple[int, bytes]:
        start.wait()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/dispatcherv2", body, headers)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))

    # Each copy either got the one answer or was told to retry (503) while the first ran.
    ok = {content for status, content in answers if status == 200}
    assert len(ok) == 1
    assert {status for status, _ in answers} <= {200, 503}
    assert _reasons(json.loads(ok.pop())["responses"]) == [(200, None)]
    assert AuditEvent.objects.filter(action="code.redeem").count() == 1
    code.refresh_from_db()
    assert code.state == State.REDEEMED
