"""A body we refuse from its headers still gets its answer, even while the client is sending.

A real gunicorn (the product's WSGI application, sync worker) answers over real sockets: the
413 for a body over 1 MiB must reach the client every time, not a connection reset, and a
client that sends far more, or too slowly, is cut off after the drain's bounds.
"""

import http.client
import json
import socket
import time
from collections import Counter

import pytest

from redemption.actors import Actor
from redemption.services import keys
from tests.test_scale_out import BIN, Processes, free_port, wait_ready

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
REPEAT = 10
DRAIN_SECONDS = 2


@pytest.fixture
def server(transactional_db, tmp_path):
    """One gunicorn sync worker serving the product on the test database."""
    procs = Processes(tmp_path)
    procs.env["REQUEST_DRAIN_MAX_SECONDS"] = str(DRAIN_SECONDS)
    port = free_port()
    try:
        procs.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "portal.wsgi:application",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
        )
        wait_ready(procs, "gunicorn", port)
        yield port
    finally:
        procs.stop()


def user_token() -> str:
    return keys.user_token_mint(
        actor=Actor.system("test"), profile_id="p-1", profile_name=None, ttl_seconds=600
    ).token


def post_redeem(port: int, size: int, token: str | None) -> str:
    """POST a JSON body of `size` bytes the way an HTTP client does; say what came back."""
    body = b'{"scanCode": "' + b"x" * (size - 17) + b'"}'
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/v1/client/redeem", body=body, headers=headers)
        response = conn.getresponse()
        return f"{response.status} {json.loads(response.read())['error']['code']}"
    except (OSError, http.client.HTTPException) as err:
        return type(err).__name__
    finally:
        conn.close()


@pytest.mark.parametrize("size", [2 * MIB, 4 * MIB, 8 * MIB])
def test_a_body_over_the_limit_gets_the_413_envelope_every_time(server, size):
    token = user_token()

    outcomes = Counter(post_redeem(server, size, token) for _ in range(REPEAT))

    assert outcomes == Counter({"413 REQUEST_TOO_LARGE": REPEAT})


def test_a_refusal_before_the_body_is_read_reaches_the_client_too(server):
    outcomes = Counter(post_redeem(server, 4 * MIB, None) for _ in range(REPEAT))

    assert outcomes == Counter({"401 AUTHENTICATION_REQUIRED": REPEAT})


def _raw_request(port: int, length: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            "POST /api/v1/client/redeem HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
    )
    return sock


def test_a_client_that_never_stops_sending_is_cut_off_after_the_drain_cap(server):
    sock = _raw_request(server, 10 * 1024**3, user_token())  # announces 10 GB
    sent, started = 0, time.monotonic()
    chunk = b"x" * (256 * 1024)
    try:
        while time.monotonic() - started < 60:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    finally:
        sock.close()

    assert time.monotonic() - started < 30
    assert sent < 64 * MIB  # the 16 MiB drain plus what the socket buffers held
    assert post_redeem(server, 2 * MIB, user_token()) == "413 REQUEST_TOO_LARGE"


def test_a_client_that_stalls_mid_body_gets_the_answer_after_the_drain_time(server):
    sock = _raw_request(server, 2 * MIB, user_token())
    sock.sendall(b"x" * 1000)  # then nothing more
    started = time.monotonic()
    try:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    finally:
        sock.close()
    waited = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"REQUEST_TOO_LARGE" in answer
    assert DRAIN_SECONDS - 0.5 <= waited < DRAIN_SECONDS + 10
