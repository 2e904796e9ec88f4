"""A real HTTP webhook on 127.0.0.1 for tests, plus a runner for examples/receiver.py."""

import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECEIVER = Path(__file__).resolve().parent.parent / "examples" / "receiver.py"


@dataclass(frozen=True)
class Seen:
    """One request the webhook received."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


# A behaviour gets the parsed request and returns (status, body); a dict body is sent as JSON.
Behaviour = Callable[[Any], tuple[int, bytes | dict[str, Any]]]


def success(_request: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"success": True, "complete": True}


class WebhookServer:
    """A ThreadingHTTPServer in a daemon thread whose answers a test sets with `behaviour`.

    With `tls` (a server-side SSLContext) it speaks https; `url` says which.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour: Behaviour = success
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.seen.append(Seen(self.path, dict(self.headers.items()), body))
                try:
                    request = json.loads(body)
                except ValueError:
                    request = None
                status, answer = outer.behaviour(request)
                data = json.dumps(answer).encode() if isinstance(answer, dict) else answer
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up (timeout) before we answered

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.seen)

    def start(self) -> "WebhookServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@contextmanager
def receiver_process(*args: str) -> Iterator[str]:
    """Run examples/receiver.py on a free port as a subprocess; yield its URL."""
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"receiver did not start: {line!r}"
        yield line.split()[2]
    finally:
        process.terminate()
        process.wait(timeout=10)
