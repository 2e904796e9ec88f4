#!/usr/bin/env python3
"""Example fulfilment webhook receiver for the Redemption Code Portal (standard library only).

It checks the X-Redemption-Signature header, grants at most once per redemption, and answers in
the way chosen by --mode. See examples/README.md.

    python examples/receiver.py --secret whsec_... --port 8099 --mode success
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNATURE_HEADER = "X-Redemption-Signature"
MODES = ("success", "fail", "async", "slow", "error", "garbage")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, as the portal sends it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """True when the header was made with `secret` over exactly this body, recently.

    After the portal rotates a secret, it signs with the new and the old one for a grace period
    (`t=...,v1=<new>,v1=<old>`): any matching v1 will do.
    """
    timestamp, signatures = None, []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    try:
        t = int(timestamp or "")
    except ValueError:
        return False
    if abs(time.time() - t) > tolerance:
        return False  # an old, replayed request
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, s) for s in signatures)


class Receiver(BaseHTTPRequestHandler):
    """Answers POSTs from the portal. Settings are class attributes, set by main() or a test."""

    secret = ""
    mode = "success"
    delay = 2.0
    tolerance = 300
    portal_url = ""
    server_key = ""
    # What has been handed out, by redemptionCodeId: a retry of a granted redemption is answered
    # with the same success and nothing is granted a second time.
    granted: dict[str, dict] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not verify(
            self.secret, body, self.headers.get(SIGNATURE_HEADER, ""), tolerance=self.tolerance
        ):
            self._answer(401, {"error": "bad signature"})
            return
        try:
            request = json.loads(body)
            redemption_id = request["redemptionCodeId"]
            attempt = request["attempt"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "not a redemption request"})
            return
        mode = self.mode
        if mode == "error":
            self._answer(500, {"error": "something broke"})
        elif mode == "garbage":
            self._send(200, b"<html>this is not JSON</html>", "text/html")
        elif mode == "fail":
            self._answer(
                200, {"success": False, "errorCode": "OUT_OF_STOCK", "errorMsg": "No items left."}
            )
        elif mode == "async":
            # Accept now, finish later through the portal's async-response endpoint.
            self._answer(200, {"success": True, "complete": False})
            if self.portal_url:
                threading.Thread(
                    target=self._finish_later, args=(request, redemption_id, attempt), daemon=True
                ).start()
        else:
            if mode == "slow":
                time.sleep(self.delay)
            self._answer(200, {"success": True, "complete": True, **self._grant(request)})

    def _grant(self, request: dict) -> dict:
        """Hand out the reward once per redemption; say what was granted."""
        with self.lock:
            first = request["redemptionCodeId"] not in self.granted
            if first:
                self.granted[request["redemptionCodeId"]] = {
                    "profileId": request.get("profileId"),
                    "reward": request.get("customCodeInfo"),
                }
        return {"customRedemptionInfo": {"granted": True, "firstTime": first}}

    def _finish_later(self, request: dict, redemption_id: str, attempt: int) -> None:
        time.sleep(self.delay)
        body = json.dumps(
            {
                "attempt": attempt,
                "asyncResponse": {"success": True, "complete": True, **self._grant(request)},
            }
        ).encode()
        call = urllib.request.Request(
            f"{self.portal_url.rstrip('/')}/api/v1/server/redemptions/{redemption_id}"
            "/async-response",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.server_key}",
            },
        )
        try:
            with urllib.request.urlopen(call, timeout=10) as response:
                self.log_message("async-response %s: HTTP %s", redemption_id, response.status)
        except OSError as err:
            self.log_message("async-response %s failed: %s", redemption_id, err)

    def _answer(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 picks a free port")
    parser.add_argument(
        "--secret",
        default=os.environ.get("RECEIVER_SECRET", ""),
        help="the code type's signing secret (or set RECEIVER_SECRET)",
    )
    parser.add_argument("--mode", choices=MODES, default="success")
    parser.add_argument(
        "--delay", type=float, default=2.0, help="seconds to wait in slow and async modes"
    )
    parser.add_argument("--tolerance", type=int, default=300, help="max signature age, seconds")
    parser.add_argument("--portal-url", default="", help="async mode: portal base URL to call")
    parser.add_argument(
        "--server-key",
        default=os.environ.get("RECEIVER_SERVER_KEY", ""),
        help="async mode: server key (or set RECEIVER_SERVER_KEY)",
    )
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("--secret (or RECEIVER_SECRET) is required")
    Receiver.secret = args.secret
    Receiver.mode = args.mode
    Receiver.delay = args.delay
    Receiver.tolerance = args.tolerance
    Receiver.portal_url = args.portal_url
    Receiver.server_key = args.server_key
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/ mode={args.mode}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
