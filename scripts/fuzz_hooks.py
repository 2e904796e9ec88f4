"""Schemathesis hooks for `make fuzz` (loaded through SCHEMATHESIS_HOOKS by scripts/fuzz.py).

Two rules of the API depend on what earlier requests did, which no document can state; the
hooks keep generated requests from tripping over them, and change nothing else:

- An Idempotency-Key names one request: a key reused for another request is a documented 422
  IDEMPOTENCY_KEY_REUSED. Generated keys repeat ("0" is a favourite), so a valid key gets a
  per-request suffix. Keys that break the rules are sent as generated (and refused).
- A code type's fulfilment webhook is called on every redeem of its codes; a webhook that
  cannot be reached is a documented 502 REDEMPTION_CODE_SCRIPT_FAILURE. In schema-valid
  requests the webhook URL is the run's own receiver (FUZZ_WEBHOOK_URL), which answers
  success, so the run never calls a made-up host. URLs that break the rules are sent as
  generated (and refused).
- A redeem or look-up of a code that has the shape of a check-character batch but a wrong
  check answers 400 INVALID_SCAN_CODE (the person mistyped). Whether a made-up code has such
  a shape depends on the batches earlier requests created; so, in schema-valid requests only,
  the run's check-character batches get a prefix no made-up scan code starts with. The typo
  rule itself is tested in tests/test_codes.py and tests/api/test_redeem.py.
"""

import itertools
import os
import re
from typing import Any

import schemathesis

from redemption import rules

_KEY = re.compile(rules.IDEMPOTENCY_KEY_REGEX)
_serial = itertools.count()
CHECK_BATCH_PREFIX = "FUZZCHK"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and _KEY.fullmatch(value):
            suffix = f"~{next(_serial):x}"
            headers[name] = value[: rules.IDEMPOTENCY_KEY_MAX - len(suffix)] + suffix
    if not _is_positive(case) or not isinstance(case.body, dict):
        return
    body = case.body
    fulfillment = body.get("fulfillment")
    if isinstance(fulfillment, dict) and "url" in fulfillment:
        fulfillment["url"] = os.environ["FUZZ_WEBHOOK_URL"]
    details = body.get("algorithmDetails")
    if isinstance(details, dict) and details.get("includeCheck") is True:
        body["prefix"] = CHECK_BATCH_PREFIX


def _is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    return bool(getattr(mode, "is_positive", False))
