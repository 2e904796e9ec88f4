"""The UNCHANGED official brainCloud JS client (npm braincloud@4.15.0 under Node) against a live
server: only its server URL points here. `make node` installs it into var/node (`make test`
does that first); without Node or the package this test fails, it never skips."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from redemption.models import AuditEvent, Code, State
from tests.braincloud_helpers import APP_ID, SECRET, make_app, user_token
from tests.factories import CodeFactory, CodeTypeFactory

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = Path(os.environ.get("BRAINCLOUD_NODE_DIR", ROOT / "var" / "node")) / "node_modules"
MARKER = "WIRE_RESULT "
SCRIPT = Path(__file__).resolve().parent / "braincloud" / "wire_client.js"


def _run_client(scenario: dict) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed; the brainCloud client tests need Node 20 (apt install nodejs)"
        )
    if not (NODE_MODULES / "braincloud" / "package.json").is_file():
        pytest.fail(f"the brainCloud JS client is not installed in {NODE_MODULES}: run `make node`")
    installed = json.loads((NODE_MODULES / "braincloud" / "package.json").read_text())
    assert installed["version"] == "4.15.0"
    result = subprocess.run(
        [node, str(SCRIPT)],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES), "WIRE_SCENARIO": json.dumps(scenario)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [x for x in result.stdout.splitlines() if x.startswith(MARKER)]
    return json.loads(line[len(MARKER) :])


@pytest.mark.django_db(transaction=True)
def test_the_official_js_client_signs_in_redeems_and_lists_with_only_its_url_changed(live_server):
    make_app(allow_anonymous=True)
    ct = CodeTypeFactory(name="xmas-2026")
    first = CodeFactory(code_type=ct, scan_code="K7QM-3XJ9-W2PA")
    second = CodeFactory(code_type=ct, scan_code="HT4N-8RCV-E6ZB")
    third = CodeFactory(code_type=ct, scan_code="M2DK-5YFG-Q9TS")
    token = user_token("player-42", "Ann")

    out = _run_client(
        {
            "url": live_server.url,
            "appId": APP_ID,
            "secret": SECRET,
            "profileId": "player-42",
            "token": token,
            "codeType": ct.name,
            "sloppyCode": " k7qm 3xj9-w2pa ",
            "secondCode": second.scan_code,
            "thirdCode": third.scan_code,
            "unknownCode": "ZZZZ-ZZZZ-ZZZZ",
            "unknownType": "no-such-type",
        }
    )

    # Anonymous: a session and a profile, the same profile for the same stored anonymous id.
    assert out["anonymous"]["status"] == 200
    anon = out["anonymous"]["data"]
    assert anon["sessionId"] and anon["profileId"].startswith("anon-")
    assert anon["newUser"] == "true"
    assert out["anonymousAgain"]["data"]["profileId"] == anon["profileId"]
    assert out["anonymousAgain"]["data"]["newUser"] == "false"
    # External: the profile the backend minted the token for.
    assert out["external"]["status"] == 200
    assert out["external"]["data"]["profileId"] == "player-42"
    assert out["external"]["data"]["playerName"] == "Ann"
    # Redeem by a sloppy spelling: the record in brainCloud's shape.
    assert out["redeem"]["status"] == 200, out["redeem"]
    record = out["redeem"]["data"]
    assert record["scanCode"] == "K7QM-3XJ9-W2PA"
    assert record["codeState"] == "Redeemed"
    assert record["gameId"] == APP_ID
    assert record["redeemedByProfileId"] == "player-42"
    assert isinstance(record["redeemedAt"], int) and record["redeemedAt"] > 1_600_000_000_000
    assert "currentAttempt" not in record and "status" not in record
    # The refusals reach their callbacks with the brainCloud reason codes.
    assert (out["redeemAgain"]["status"], out["redeemAgain"]["reason_code"]) == (400, 40402)
    assert (out["unknownCode"]["status"], out["unknownCode"]["reason_code"]) == (400, 40395)
    assert (out["unknownType"]["status"], out["unknownType"]["reason_code"]) == (400, 40399)
    # Two calls made in one tick went out as one packet, and both callbacks fired.
    bundled = [p for p in out["proxy"] if len(p["ops"]) == 2]
    assert [p["ops"] for p in bundled] == [["REDEEM_CODE", "GET_REDEEMED_CODES"]]
    assert out["bundledRedeem"]["status"] == 200
    assert out["bundledRedeem"]["data"]["customRedemptionInfo"] == {"note": "bundled"}
    assert out["bundledList"]["status"] == 200
    listed = [c["scanCode"] for c in out["bundledList"]["data"]["codes"]]
    assert listed == ["HT4N-8RCV-E6ZB", "K7QM-3XJ9-W2PA"]  # newest first
    # The lost answer: the client sent the identical body again and got the first answer.
    resends = [p for p in out["proxy"] if third.scan_code in p["body"]]
    assert len(resends) == 2
    assert resends[0]["lost"] and not resends[1]["lost"]
    assert resends[0]["body"] == resends[1]["body"]
    assert out["resent"]["status"] == 200, out["resent"]
    assert out["resent"]["data"]["scanCode"] == third.scan_code
    assert AuditEvent.objects.filter(action="code.redeem", scan_code=third.scan_code).count() == 1
    # The full list.
    assert [c["scanCode"] for c in out["list"]["data"]["codes"]] == [
        third.scan_code,
        second.scan_code,
        first.scan_code,
    ]
    # A wrong app secret and a bad External token: the callbacks fire with the errors.
    assert (out["wrongSecret"]["status"], out["wrongSecret"]["reason_code"]) == (403, 40840)
    assert (out["badToken"]["status"], out["badToken"]["reason_code"]) == (403, 40843)
    # Every packet the client sent was answered 200 but the one the proxy lost on the way back.
    assert {p["status"] for p in out["proxy"]} == {200}
    for code in (first, second, third):
        code.refresh_from_db()
        assert code.state == State.REDEEMED
        assert code.redeemed_by_profile_id == "player-42"
    assert Code.objects.filter(state=State.REDEEMED).count() == 3
