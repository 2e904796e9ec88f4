"""Answer a request even while its client is still sending the body we chose not to read.

A 413 (body too large), a 401 or a 404 is decided from the headers alone. Closing a socket
that still holds unread bytes makes the kernel reset the connection, and a client still busy
sending sees that reset instead of our answer. So after the application has answered, and
before the server writes that answer, whatever is left of the body is read and dropped:
at most `max_bytes`, for at most `max_seconds`. A client that sends more, or more slowly,
gets the connection closed on it; nobody can hold a worker with an endless body.
"""

import time
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CHUNK = 64 * 1024


class _CountingInput:
    """wsgi.input that remembers how many bytes the application read."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.consumed += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self.consumed += len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = self._stream.readlines(hint)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> "_CountingInput":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _content_length(environ: dict[str, Any]) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def discard(stream: Any, left: int, *, max_bytes: int, max_seconds: float, sock: Any) -> int:
    """Read and drop up to `left` bytes (at most max_bytes, for at most max_seconds); return
    how many were dropped. `sock`, when the server exposes it, bounds each wait for data."""
    deadline = time.monotonic() + max_seconds
    budget = min(left, max_bytes)
    dropped = 0
    previous = sock.gettimeout() if sock is not None else None
    try:
        while dropped < budget:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if sock is not None:
                sock.settimeout(remaining)
            data = stream.read(min(CHUNK, budget - dropped))
            if not data:
                break
            dropped += len(data)
    except OSError:  # the client went away, or sent too slowly
        pass
    finally:
        if sock is not None:
            sock.settimeout(previous)
    return dropped


class DrainUnreadBody:
    """WSGI middleware: drop what the application left unread of a request body, bounded."""

    def __init__(self, app: WSGIApp, *, max_bytes: int, max_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = _content_length(environ)
        if not length:
            return self.app(environ, start_response)
        counting = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counting
        result = self.app(environ, start_response)
        left = length - counting.consumed
        if left > 0:
            discard(
                counting,
                left,
                max_bytes=self.max_bytes,
                max_seconds=self.max_seconds,
                sock=environ.get("gunicorn.socket"),
            )
        return result
