"""The fuzz run's own pieces: its hooks change only what they say, its document compiles."""

import re
from types import SimpleNamespace
from typing import Any

import jsonschema_rs
import pytest

from redemption import rules
from redemption.api.openapi import document
from scripts import fuzz_hooks


def _case(mode_positive: bool, headers: dict[str, str], body: Any = None, path: str = "/x"):
    mode = SimpleNamespace(is_positive=mode_positive)
    meta = SimpleNamespace(generation=SimpleNamespace(mode=mode))
    return SimpleNamespace(headers=headers, body=body, path=path, meta=meta)


def test_a_valid_idempotency_key_gets_a_suffix_of_its_own_and_stays_valid():
    first, second = _case(True, {"Idempotency-Key": "0"}), _case(True, {"Idempotency-Key": "0"})
    longest = _case(True, {"Idempotency-Key": "k" * rules.IDEMPOTENCY_KEY_MAX})

    for case in (first, second, longest):
        fuzz_hooks.before_call(None, case, {})

    keys = [c.headers["Idempotency-Key"] for c in (first, second, longest)]
    assert len(set(keys)) == 3
    assert all(re.fullmatch(rules.IDEMPOTENCY_KEY_REGEX, k) for k in keys)


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there"])
def test_a_key_that_breaks_the_rules_is_sent_as_generated(key):
    case = _case(False, {"Idempotency-Key": key})

    fuzz_hooks.before_call(None, case, {})

    assert case.headers["Idempotency-Key"] == key


def test_only_valid_requests_get_the_runs_webhook_and_check_batch_prefix(monkeypatch):
    monkeypatch.setenv("FUZZ_WEBHOOK_URL", "http://127.0.0.1:9/fulfil")
    body = {"fulfillment": {"url": "http://x"}, "algorithmDetails": {"includeCheck": True}}
    valid, invalid = _case(True, {}, dict(body)), _case(False, {}, dict(body))

    fuzz_hooks.before_call(None, valid, {})
    fuzz_hooks.before_call(None, invalid, {})

    assert valid.body["fulfillment"]["url"] == "http://127.0.0.1:9/fulfil"
    assert valid.body["prefix"] == fuzz_hooks.CHECK_BATCH_PREFIX
    assert "prefix" not in invalid.body


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


@pytest.mark.parametrize("pattern", sorted(set(_patterns(document()))))
def test_every_pattern_reads_the_same_in_python_and_ecma_262(pattern):
    python = re.compile(pattern)
    ecma = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    samples = ["", "a", "ABCD-1234", "xmas-2026", "https://shop.example/hook", "a\n", "\x1e", "é"]

    for sample in samples:
        assert bool(python.search(sample)) == ecma.is_valid(sample), (pattern, sample)
