"""`POST /s2sdispatcher` with raw packets exactly as brainCloud's S2S library and docs send
them (the library is not on the registry): sign-in, sessions, resends, the sessionless form,
heartbeat, every operation, and the scope of each operation's JSON API twin (SPEC §11, §13)."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from redemption import rules
from redemption.actors import Actor
from redemption.braincloud import s2s_sessions
from redemption.models import (
    AuditEvent,
    Batch,
    BraincloudApp,
    Code,
    CodeType,
    Job,
    S2SSession,
    ServerKey,
    SharedRedemption,
    State,
)
from redemption.services import keys
from tests.api.test_errors import _database_unreachable
from tests.braincloud_helpers import APP_ID, make_app
from tests.factories import CodeTypeFactory
from tests.fulfilment import ACCEPTED, DONE, TX, start_async

SERVER_NAME = "game-backend"
SERVICE = "redemptionCode"


@pytest.fixture
def app(db):
    return make_app()


@pytest.fixture
def secret(db) -> str:
    _, secret = keys.server_key_create(actor=Actor.system("test"), name=SERVER_NAME)
    return secret


@pytest.fixture
def client() -> Client:
    return Client()


def post(client: Client, body: bytes):
    # The S2S library sends only Content-Type and Content-Length.
    return client.post("/s2sdispatcher", data=body, content_type="application/json")


def auth_packet(secret: str, *, name: str = SERVER_NAME, app_id: str = APP_ID) -> bytes:
    """The library's sign-in packet, key for key."""
    return json.dumps(
        {
            "packetId": 0,
            "messages": [
                {
                    "service": "authenticationV2",
                    "operation": "AUTHENTICATE",
                    "data": {"appId": app_id, "serverName": name, "serverSecret": secret},
                }
            ],
        }
    ).encode()


def later_packet(session_id: str, packet_id: int, message: dict) -> bytes:
    return json.dumps(
        {"packetId": packet_id, "sessionId": session_id, "messages": [message]}
    ).encode()


def op(operation: str, data: dict | None = None, service: str = SERVICE) -> dict:
    message = {"service": service, "operation": operation}
    if data is not None:
        message["data"] = data
    return message


def sign_in(client: Client, secret: str) -> str:
    body = json.loads(post(client, auth_packet(secret)).content)
    return body["messageResponses"][0]["data"]["sessionId"]


class Session:
    """A signed-in S2S backend that numbers its packets as the library does."""

    def __init__(self, client: Client, secret: str) -> None:
        self.client = client
        self.session_id = sign_in(client, secret)
        self.packet_id = 0

    def call(self, operation: str, data: dict | None = None, **kw) -> dict:
        self.packet_id += 1
        return self.send(later_packet(self.session_id, self.packet_id, op(operation, data, **kw)))

    def send(self, body: bytes) -> dict:
        response = post(self.client, body)
        assert response.status_code == 200
        return json.loads(response.content)

    def entry(self, operation: str, data: dict | None = None, **kw) -> dict:
        answer = self.call(operation, data, **kw)
        assert answer["packetId"] == self.packet_id
        [entry] = answer["messageResponses"]
        return entry


@pytest.fixture
def s2s(app, client, secret) -> Session:
    return Session(client, secret)


def _error(entry: dict) -> tuple[int, int]:
    assert entry["severity"] == "ERROR" and entry["status_message"]
    return entry["status"], entry["reason_code"]


# --- sign-in and sessions ---------------------------------------------------------------------


def test_sign_in_answers_the_session_id_and_heartbeat_in_message_responses(app, client, secret):
    response = post(client, auth_packet(secret))

    assert response.status_code == 200
    body = json.loads(response.content)
    assert set(body) == {"packetId", "messageResponses"}
    assert body["packetId"] == 0
    [entry] = body["messageResponses"]
    assert entry["status"] == 200
    assert entry["data"]["heartbeatSeconds"] == 1800
    session = S2SSession.objects.get()
    assert session.key_hash == s2s_sessions.session_hash(entry["data"]["sessionId"])
    assert session.server_key.name == SERVER_NAME
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"secret": "rk_" + "x" * 40}, (403, 40843)),  # no such key
        ({"name": "another-backend"}, (403, 40843)),  # not that key's name
        ({"app_id": "99999"}, (403, 40840)),  # no such app
        ({"secret": ""}, (403, 40843)),
    ],
)
def test_a_bad_sign_in_is_an_error_entry(app, client, secret, change, expected):
    body = auth_packet(
        change.get("secret", secret),
        name=change.get("name", SERVER_NAME),
        app_id=change.get("app_id", APP_ID),
    )

    answer = json.loads(post(client, body).content)

    assert answer["packetId"] == 0
    assert _error(answer["messageResponses"][0]) == expected
    assert not S2SSession.objects.exists()


def test_a_key_without_wire_s2s_or_revoked_cannot_sign_in(app, client):
    system = Actor.system("test")
    _, narrow = keys.server_key_create(
        actor=system, name=SERVER_NAME, scopes=[rules.SCOPE_CODES_WRITE]
    )
    revoked, revoked_secret = keys.server_key_create(actor=system, name="old-backend")
    keys.server_key_revoke(actor=system, reference=str(revoked.pk))

    scope = json.loads(post(client, auth_packet(narrow)).content)["messageResponses"][0]
    gone = json.loads(post(client, auth_packet(revoked_secret, name="old-backend")).content)

    assert _error(scope) == (403, 40813)
    assert _error(gone["messageResponses"][0]) == (403, 40843)


def test_packet_ids_are_echoed_and_a_heartbeat_is_accepted(s2s):
    # The library's heartbeat has no data key; the docs show data: null.
    assert s2s.entry("HEARTBEAT", service="heartbeat") == {"status": 200, "data": None}
    answer = s2s.send(
        json.dumps(
            {
                "packetId": 7,
                "sessionId": s2s.session_id,
                "messages": [{"service": "heartbeat", "operation": "HEARTBEAT", "data": None}],
            }
        ).encode()
    )
    assert answer == {"packetId": 7, "messageResponses": [{"status": 200, "data": None}]}


def _expired(answer: dict) -> None:
    assert answer["status"] == 403 and answer["reason_code"] == 40365
    assert [_error(e) for e in answer["messageResponses"]] == [(403, 40365)]


def test_unknown_expired_and_revoked_sessions_are_a_top_level_40365(s2s, secret):
    _expired(s2s.send(later_packet("no-such-session", 1, op("HEARTBEAT", service="heartbeat"))))

    S2SSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _expired(s2s.call("HEARTBEAT", service="heartbeat"))

    # Signing in again (packetId 0, as the library does) gives a working session...
    again = Session(s2s.client, secret)
    assert again.entry("HEARTBEAT", service="heartbeat")["status"] == 200
    # ...until its key is revoked: that ends every session of the key at once.
    key = ServerKey.objects.get(name=SERVER_NAME)
    keys.server_key_revoke(actor=Actor.system("test"), reference=str(key.pk))
    _expired(again.call("HEARTBEAT", service="heartbeat"))


def test_a_disabled_app_ends_its_s2s_sessions(s2s, app):
    BraincloudApp.objects.filter(pk=app.pk).update(is_enabled=False)
    _expired(s2s.call("HEARTBEAT", service="heartbeat"))


def test_a_resent_packet_gets_the_stored_answer_and_runs_nothing_again(s2s):
    ct = CodeTypeFactory()
    body = later_packet(
        s2s.session_id,
        1,
        op("GENERATE_CODES_INLINE", {"codeType": ct.name, "quantity": 3}),
    )

    first = post(s2s.client, body).content
    resent = post(s2s.client, body).content

    assert resent == first  # byte for byte
    first = json.loads(first)
    assert len(first["messageResponses"][0]["data"]["generatedScanCodes"]) == 3
    assert Batch.objects.filter(code_type=ct).count() == 1
    assert Code.objects.filter(code_type=ct).count() == 3
    # Gaps in packet ids are normal; a new id runs again.
    s2s.packet_id = 5
    again = s2s.entry("GENERATE_CODES_INLINE", {"codeType": ct.name, "quantity": 3})
    assert again["status"] == 200
    assert Code.objects.filter(code_type=ct).count() == 6


def test_the_sessionless_form_is_answered_with_one_entry(app, client, secret):
    ct = CodeTypeFactory()
    body = {
        "gameId": APP_ID,
        "serverName": SERVER_NAME,
        "gameSecret": secret,
        "service": SERVICE,
        "operation": "ADD_CODE",
        "data": {"scanCode": "SESS-LESS-0001", "codeType": ct.name, "codeState": "Available"},
    }

    entry = json.loads(post(client, json.dumps(body).encode()).content)
    refused = json.loads(
        post(client, json.dumps({**body, "gameSecret": "rk_nope"}).encode()).content
    )

    assert entry["status"] == 200
    assert entry["data"]["scanCode"] == "SESS-LESS-0001"
    assert entry["data"]["codeState"] == "Available"
    assert _error(refused) == (403, 40843)
    assert not S2SSession.objects.exists()


def test_an_unknown_operation_or_a_bad_body_is_an_error_entry(s2s, client):
    assert _error(s2s.entry("DELETE_EVERYTHING", {})) == (400, 40842)
    answer = json.loads(post(client, b"{not json").content)
    assert _error(answer["messageResponses"][0]) == (400, 40660)
    too_big = json.loads(post(client, b" " * (1024 * 1024 + 1)).content)
    assert _error(too_big["messageResponses"][0]) == (413, 40830)


# --- operations --------------------------------------------------------------------------------


def test_add_activate_update_and_invalidate_a_code(s2s):
    ct = CodeTypeFactory()
    added = s2s.entry(
        "ADD_CODE",
        {"scanCode": "S2S-0001-AAAA", "codeType": ct.name, "customCodeInfo": {"v": 1}},
    )
    assert added["status"] == 200
    record = added["data"]
    # The record itself, in brainCloud's shape: epoch milliseconds, the app as gameId.
    assert (record["scanCode"], record["codeState"], record["version"]) == (
        "S2S-0001-AAAA",
        "Inactive",
        1,
    )
    assert record["gameId"] == APP_ID
    assert isinstance(record["createdAt"], int) and record["activatedAt"] is None
    assert "currentAttempt" not in record and "response" not in record

    activated = s2s.entry("ACTIVATE_CODE", {"scanCode": "s2s 0001 aaaa", "codeType": ct.name})
    assert activated["data"]["codeState"] == "Available"
    assert isinstance(activated["data"]["activatedAt"], int)

    stale = s2s.entry(
        "UPDATE_CUSTOM_INFO",
        {"scanCode": "S2S-0001-AAAA", "codeType": ct.name, "version": 1, "customCodeInfo": {}},
    )
    assert _error(stale) == (400, 40396)
    updated = s2s.entry(
        "UPDATE_CUSTOM_INFO",
        {
            "scanCode": "S2S-0001-AAAA",
            "codeType": ct.name,
            "version": activated["data"]["version"],
            "customCodeInfo": {"v": 2},
        },
    )
    assert updated["data"]["customCodeInfo"] == {"v": 2}

    invalidated = s2s.entry(
        "INVALIDATE_CODE",
        {"scanCode": "S2S-0001-AAAA", "codeType": ct.name, "invalidationReason": "stolen"},
    )
    assert invalidated["data"]["codeState"] == "Invalidated"
    assert invalidated["data"]["invalidationReason"] == "stolen"
    again = s2s.entry("INVALIDATE_CODE", {"scanCode": "S2S-0001-AAAA", "codeType": ct.name})
    assert _error(again) == (400, 40400)
    assert _error(s2s.entry("ADD_CODE", {"scanCode": "S2S-0001-AAAA", "codeType": ct.name})) == (
        400,
        40801,
    )
    actions = set(
        AuditEvent.objects.filter(actor_kind="server_key").values_list("action", flat=True)
    )
    assert {"code.add", "code.activate", "code.invalidate"} <= actions


def test_generate_codes_starts_a_job(s2s):
    ct = CodeTypeFactory()

    entry = s2s.entry(
        "GENERATE_CODES",
        {
            "codeType": ct.name,
            "quantity": 25,
            "algorithmName": "FiveByFive",
            "algorithmDetailsJson": {"includeCheck": True},
            "emailAddress": "ops@example.com",
        },
    )

    assert entry["status"] == 200
    job = Job.objects.get(pk=entry["data"]["jobId"])
    assert (job.kind, job.code_type_id, job.total) == ("generate", ct.pk, 25)
    assert (job.params["algorithm"], job.params["includeCheck"]) == ("FiveByFive", True)
    assert entry["data"]["message"] == (
        "Generating 25 redemption codes using FiveByFive algorithm and options (includeCheck=true)"
    )


def test_generate_inline_answers_the_generated_scan_codes(s2s):
    ct = CodeTypeFactory()
    entry = s2s.entry("GENERATE_CODES_INLINE", {"codeType": ct.name, "quantity": 2})
    assert sorted(entry["data"]["generatedScanCodes"]) == sorted(
        Code.objects.filter(code_type=ct).values_list("scan_code", flat=True)
    )
    over = s2s.entry("GENERATE_CODES_INLINE", {"codeType": ct.name, "quantity": 1001})
    assert _error(over) == (400, 40660)


@TX
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_process_asynchronous_response_by_scan_code_type_and_0_based_attempt(webhook, shared):
    make_app()
    _, secret = keys.server_key_create(actor=Actor.system("test"), name=SERVER_NAME)
    s2s = Session(Client(), secret)
    ct, record = start_async(webhook, shared=shared, timeout=60)
    data = {
        "scanCode": ct.scan_code if shared else record.scan_code,
        "codeType": ct.name,
        "attempt": 0,
        "asyncResponse": {**DONE, "customRedemptionInfo": {"item": "sword"}},
    }
    if shared:
        data["profileId"] = record.profile_id

    wrong = s2s.entry("PROCESS_ASYNCHRONOUS_RESPONSE", {**data, "attempt": 1})
    entry = s2s.entry("PROCESS_ASYNCHRONOUS_RESPONSE", data)

    assert _error(wrong) == (400, 40760)
    assert entry["status"] == 200, entry
    assert entry["data"]["codeState"] == "Redeemed"
    assert entry["data"]["currentAttempt"] == 0
    assert entry["data"]["status"]["attempt"] == 0
    assert entry["data"]["status"]["attemptState"] == "COMPLETE"
    assert entry["data"]["customRedemptionInfo"] == {"item": "sword"}
    model = SharedRedemption if shared else Code
    assert model.objects.get(pk=record.pk).state == State.REDEEMED
    if shared:
        nobody = s2s.entry("PROCESS_ASYNCHRONOUS_RESPONSE", {**data, "profileId": "nobody"})
        assert _error(nobody) == (400, 40395)
        missing = {k: v for k, v in data.items() if k != "profileId"}
        assert _error(s2s.entry("PROCESS_ASYNCHRONOUS_RESPONSE", missing)) == (400, 40660)
    else:
        other = CodeTypeFactory()
        mismatch = s2s.entry("PROCESS_ASYNCHRONOUS_RESPONSE", {**data, "codeType": other.name})
        assert _error(mismatch) == (400, 40755)


@TX
def test_process_asynchronous_response_keeps_an_attempt_open(webhook):
    make_app()
    _, secret = keys.server_key_create(actor=Actor.system("test"), name=SERVER_NAME)
    s2s = Session(Client(), secret)
    ct, record = start_async(webhook, timeout=60)

    entry = s2s.entry(
        "PROCESS_ASYNCHRONOUS_RESPONSE",
        {
            "scanCode": record.scan_code,
            "codeType": ct.name,
            "attempt": 0,
            "asyncResponse": ACCEPTED,
        },
    )

    assert entry["data"]["codeState"] == "InProgress"
    assert entry["data"]["status"]["attemptState"] == "IN_PROGRESS"


def test_sys_add_multi_use_code_type(s2s):
    start, end = 1_767_225_600_000, 1_767_225_600_000 + 604_800_000
    entry = s2s.entry(
        "SYS_ADD_MULTI_USE_CODE_TYPE",
        {
            "codeType": "spring-promo",
            "jsonOptions": {
                "scanCode": "SPRING26",
                "validStart": start,
                "validEnd": end,
                "description": "Spring",
                "maxRedemptions": 100,
                "customCodeInfo": {"gems": 5},
                "redemptionCodeScriptId": None,
                "async": True,
                "maxRetries": 1,
            },
        },
    )

    assert entry["status"] == 200, entry
    data = entry["data"]
    assert (data["codeType"], data["codeUseType"], data["scanCode"]) == (
        "spring-promo",
        "MULTI",
        "SPRING26",
    )
    assert (data["validStart"], data["validEnd"], data["maxRedemptions"]) == (start, end, 100)
    assert data["version"] == 1 and isinstance(data["createdAt"], int)
    ct = CodeType.objects.get(name="spring-promo")
    assert ct.is_shared and ct.custom_code_info == {"gems": 5}
    duplicate = s2s.entry(
        "SYS_ADD_MULTI_USE_CODE_TYPE",
        {"codeType": "spring-promo", "jsonOptions": {"scanCode": "OTHER26"}},
    )
    assert _error(duplicate) == (400, 40802)


def test_sys_get_code_type_page_and_offset_walk_the_list_by_name(s2s):
    for name in ("a-one", "b-two", "c-three", "d-four", "e-five"):
        CodeTypeFactory(name=name)
    CodeTypeFactory(name="f-disabled", is_disabled=True)
    context = {
        "pagination": {"rowsPerPage": 2, "pageNumber": 1},
        "searchCriteria": {"codeUseType": "SINGLE", "isDisabled": {"$ne": True}},
        "sortCriteria": {"codeType": 1},
    }

    first = s2s.entry("SYS_GET_CODE_TYPE_PAGE", {"context": context})["data"]
    second = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE_OFFSET", {"context": first["context"], "pageOffset": 1}
    )["data"]
    third = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE_OFFSET", {"context": second["context"], "pageOffset": 1}
    )["data"]
    back = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE_OFFSET", {"context": third["context"], "pageOffset": -2}
    )["data"]
    jumped = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE",
        {"context": {**context, "pagination": {"rowsPerPage": 2, "pageNumber": 3}}},
    )["data"]

    def names(page):
        return [item["codeType"] for item in page["results"]["items"]]

    assert names(first) == ["a-one", "b-two"]
    assert names(second) == ["c-three", "d-four"]
    assert names(third) == names(jumped) == ["e-five"]
    assert names(back) == names(first)
    assert first["results"]["count"] == 5
    assert (first["results"]["moreBefore"], first["results"]["moreAfter"]) == (False, True)
    assert (third["results"]["moreBefore"], third["results"]["moreAfter"]) == (True, False)
    assert third["results"]["page"] == 3
    assert isinstance(first["_serverTime"], int)
    assert isinstance(first["results"]["items"][0]["createdAt"], int)

    tampered = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE_OFFSET", {"context": first["context"] + "x", "pageOffset": 1}
    )
    before_first = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE_OFFSET", {"context": first["context"], "pageOffset": -1}
    )
    unsupported = s2s.entry(
        "SYS_GET_CODE_TYPE_PAGE",
        {"context": {**context, "searchCriteria": {"validEnd": {"$gt": 0}}}},
    )
    assert [_error(e) for e in (tampered, before_first, unsupported)] == [(400, 40660)] * 3


@pytest.mark.parametrize(
    ("operation", "data", "scope"),
    [
        ("ADD_CODE", {"scanCode": "SCOPE-0001", "codeType": "t"}, "codes:write"),
        ("GENERATE_CODES_INLINE", {"codeType": "t", "quantity": 1}, "jobs"),
        ("SYS_ADD_MULTI_USE_CODE_TYPE", {"codeType": "t2", "jsonOptions": {}}, "code-types:write"),
        ("SYS_GET_CODE_TYPE_PAGE", {"context": {}}, "codes:read"),
        (
            "PROCESS_ASYNCHRONOUS_RESPONSE",
            {"scanCode": "X", "codeType": "t", "attempt": 0, "asyncResponse": {}},
            "fulfilment",
        ),
    ],
)
def test_each_operation_needs_the_scope_of_its_json_api_twin(app, client, operation, data, scope):
    system = Actor.system("test")
    others = [s for s in rules.SERVER_KEY_SCOPES if s != scope]
    _, secret = keys.server_key_create(actor=system, name=SERVER_NAME, scopes=others)
    s2s = Session(client, secret)

    entry = s2s.entry(operation, data)

    assert _error(entry) == (403, 40813)
    assert scope in entry["status_message"]


def test_a_field_error_names_the_fields_in_its_message(s2s):
    ct = CodeTypeFactory()
    entry = s2s.entry("ADD_CODE", {"codeType": ct.name, "scanCode": 42})
    assert _error(entry) == (400, 40660)
    assert "scanCode" in entry["status_message"]


def test_a_sign_in_packet_with_a_stale_session_id_still_signs_in(app, client, secret):
    body = json.loads(auth_packet(secret))
    body["sessionId"] = "an-old-session"

    entry = json.loads(post(client, json.dumps(body).encode()).content)["messageResponses"][0]

    assert entry["status"] == 200 and entry["data"]["sessionId"]


def test_s2s_messages_are_counted_in_metrics(s2s, client, settings):
    settings.METRICS_TOKEN = "metrics-token-123"
    s2s.entry("HEARTBEAT", service="heartbeat")
    s2s.entry("ADD_CODE", {"codeType": "no-such-type", "scanCode": "MTRC-0001"})

    text = client.get(
        "/metrics", headers={"Authorization": "Bearer metrics-token-123"}
    ).content.decode()

    assert (
        'redemption_wire_messages_total{endpoint="s2s",operation="HEARTBEAT",outcome="ok",'
        'service="heartbeat"}' in text
    )
    assert (
        'redemption_wire_messages_total{endpoint="s2s",operation="ADD_CODE",outcome="error",'
        'service="redemptionCode"}' in text
    )
    assert (
        'redemption_wire_messages_total{endpoint="s2s",operation="AUTHENTICATE",outcome="ok",'
        'service="authenticationV2"}' in text
    )


@pytest.mark.django_db(transaction=True)
def test_the_s2s_dispatcher_answers_503_while_the_database_is_down(tmp_path):
    make_app()
    _, secret = keys.server_key_create(actor=Actor.system("test"), name=SERVER_NAME)
    s2s = Session(Client(), secret)
    ct = CodeTypeFactory()
    body = later_packet(
        s2s.session_id, 1, op("ADD_CODE", {"codeType": ct.name, "scanCode": "DOWN-0001"})
    )

    with _database_unreachable(tmp_path):
        down = post(s2s.client, body)

    assert down.status_code == 503 and down["Retry-After"]
    # The same body resent once the database is back runs then, once.
    assert s2s.send(body)["messageResponses"][0]["status"] == 200
    assert s2s.send(body)["messageResponses"][0]["status"] == 200
    assert Code.objects.filter(code_type=ct).count() == 1
