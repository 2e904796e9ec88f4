"""Scan codes match the whole string everywhere; migration 0010 repairs what got through."""

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone
from jsonschema import Draft202012Validator

from redemption import exceptions as exc
from redemption import rules
from redemption.api.openapi import document
from redemption.models import AuditEvent, Code, CodeType
from redemption.services import code_add, code_type_create, redeem

BEFORE = ("redemption", "0009_profile_recent_indexes")
AFTER = ("redemption", "0010_normalise_scan_codes")


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_no_pattern_of_the_openapi_document_lets_a_trailing_line_break_through():
    patterns = set(_patterns(document()))

    assert rules.CODE_TYPE_NAME_PATTERN in patterns
    assert not [p for p in patterns if p.endswith("$")]
    for sample, pattern in [
        ("xmas-2026", rules.CODE_TYPE_NAME_PATTERN),
        ("https://shop.example/hook", rules.WEBHOOK_URL_PATTERN),
        ("key-1", rules.IDEMPOTENCY_KEY_PATTERN),
    ]:
        assert re.search(pattern, sample)
        assert not re.search(pattern, sample + "\n")  # Python's reading of JSON Schema


def test_a_name_with_a_line_break_is_invalid_by_the_document_itself():
    schema = document()["paths"]["/api/v1/server/code-types"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    validator = Draft202012Validator(schema)

    assert validator.is_valid({"codeType": "xmas-2026"})
    assert not validator.is_valid({"codeType": "xmas-2026\n"})


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["ABCD1234\n", "ABCD1234\r", "\nABCD1234", "ABCD\n1234"])
def test_no_service_takes_a_scan_code_with_a_line_break(ops, code_type, profile, raw):
    with pytest.raises(exc.InvalidScanCodeError):
        code_add(actor=ops, code_type_name=code_type.name, scan_code=raw)
    with pytest.raises(exc.InvalidScanCodeError):
        code_type_create(actor=ops, name="shared", use_type="MULTI", scan_code=raw)
    with pytest.raises(exc.InvalidScanCodeError):
        redeem(actor=ops, profile=profile, scan_code=raw)


# --- migration 0010 -------------------------------------------------------------------------


@pytest.fixture
def before_0010(transactional_db):
    """The database as of 0009 (with 0010 still to run), and the models of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    apps = executor.loader.project_state([BEFORE]).apps
    yield apps
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _old_rows(apps) -> dict[str, Any]:
    """Codes stored the way the old re.match check let them through, beside good ones."""
    OldCodeType = apps.get_model("redemption", "CodeType")
    OldCode = apps.get_model("redemption", "Code")
    now = timezone.now()
    ct = OldCodeType.objects.create(name="legacy", created_at=now, updated_at=now)

    def code(scan: str, canonical: str, state: str = "Available", **extra: Any):
        return OldCode.objects.create(
            code_type=ct,
            scan_code=scan,
            canonical=canonical,
            state=state,
            created_at=now,
            updated_at=now,
            **extra,
        )

    shared_ok = OldCodeType.objects.create(
        name="shared-ok",
        use_type="MULTI",
        scan_code="FREE-STUFF\n",
        canonical_scan_code="FREESTUFF\n",
        created_at=now,
        updated_at=now,
    )
    OldCode.objects.create(
        code_type=shared_ok,
        is_shared_anchor=True,
        scan_code="FREE-STUFF\n",
        canonical="FREESTUFF\n",
        state="Available",
        created_at=now,
        updated_at=now,
    )
    shared_clash = OldCodeType.objects.create(
        name="shared-clash",
        use_type="MULTI",
        scan_code="GOOD0001\n",
        canonical_scan_code="G00D0001\n",
        created_at=now,
        updated_at=now,
    )
    return {
        "good": code("GOOD-0001", "G00D0001"),
        "fixable": code("LONE-0001\n", "10NE0001\n"),
        "spaced": code(" EDGE-0001 ", "EDGE0001\n"),
        "clash": code("GOOD-0001\n", "G00D0001\n"),
        "clash_redeemed": code(
            "GOOD-0001 ",
            "G00D0001 ",
            state="Redeemed",
            redeemed_by_profile_id="p-1",
            redeemed_at=now,
        ),
        "shared_ok": shared_ok,
        "shared_clash": shared_clash,
    }


def test_migration_0010_fixes_free_codes_and_invalidates_and_lists_the_clashes(
    before_0010, capsys, client, admin_user
):
    old = _old_rows(before_0010)

    MigrationExecutor(connection).migrate([AFTER])

    printed = capsys.readouterr().out
    rows = {name: Code.objects.get(pk=old[name].pk) for name in old if "shared" not in name}
    assert (rows["good"].canonical, rows["good"].state) == ("G00D0001", "Available")
    assert (rows["fixable"].canonical, rows["fixable"].scan_code) == ("10NE0001", "LONE-0001")
    assert (rows["spaced"].canonical, rows["spaced"].scan_code) == ("EDGE0001", "EDGE-0001")
    assert rows["fixable"].state == rows["spaced"].state == "Available"
    assert rows["clash"].state == "Invalidated"
    assert rows["clash"].invalidation_reason == "duplicate after normalisation"
    assert rows["clash"].canonical == "G00D0001\n"  # nothing else may take its place
    assert rows["clash_redeemed"].state == "Redeemed"  # its redemption happened
    # Only the columns 0010 knows: later migrations add others to the model.
    shared_ok = CodeType.objects.only("scan_code", "canonical_scan_code").get(name="shared-ok")
    assert (shared_ok.scan_code, shared_ok.canonical_scan_code) == ("FREE-STUFF", "FREESTUFF")
    assert Code.objects.get(code_type=shared_ok, is_shared_anchor=True).canonical == "FREESTUFF"
    assert CodeType.objects.only("is_disabled").get(name="shared-clash").is_disabled
    events = {e.target_id: e for e in AuditEvent.objects.filter(action__endswith=".normalise")}
    assert set(events) == {
        str(old[name].pk)
        for name in ("fixable", "spaced", "clash", "clash_redeemed", "shared_ok", "shared_clash")
    }
    assert events[str(old["clash"].pk)].details["outcome"].startswith("invalidated")
    assert events[str(old["clash"].pk)].code_type_name == "legacy"
    for name in ("fixable", "spaced", "clash", "clash_redeemed"):
        assert str(old[name].pk) in printed
    assert "shared-clash" in printed and "shared-ok" in printed
    # The type page lists the code it had to leave as it was, and no longer fails (with the
    # later migrations applied, as a running portal has them).
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    client.force_login(admin_user)
    page = client.get(reverse("redemption:code_type_detail", args=["legacy"]))
    assert page.status_code == 200
    assert "GOOD-0001" in page.content.decode()
    audit = client.get(reverse("redemption:audit_log") + "?action=code.normalise")
    assert len(audit.context["table"].rows) == 4


def test_migration_0010_finds_nothing_to_do_in_a_clean_database(before_0010, capsys):
    call_command("migrate", "redemption", AFTER[1], verbosity=0)

    assert "Scan codes with surrounding whitespace" not in capsys.readouterr().out
    assert not AuditEvent.objects.filter(action__endswith=".normalise").exists()
