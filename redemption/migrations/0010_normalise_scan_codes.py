"""Repair stored scan codes that an old check let through with surrounding whitespace.

The old check, re.match(r"^[A-Z0-9]{4,64}$"), accepted "ABCD1234\n": such a code was stored
beside ABCD1234 (breaking the one namespace), could only be redeemed with the line break, and
its canonical form made the type's page fail. For every stored code (personal codes and shared
types' scan codes) whose canonical or display form carries leading or trailing whitespace:

- when the cleaned canonical form is free, the code is fixed in place;
- when it collides with another code (or is still no valid scan code), the code is refused:
  a personal code that may still be invalidated is Invalidated with the reason "duplicate
  after normalisation" (a Redeemed or InProgress one keeps its state: its redemption
  happened); a shared type is disabled.

Each code found is printed and gets an audit event ("code.normalise" or
"code_type.normalise") naming what was done, so staff can find them later.

The rules are copied here as they stand today (a migration must not change with the app).
"""

import re

from django.db import migrations
from django.db.models import F, Q
from django.utils import timezone

REASON = "duplicate after normalisation"
INVALID_REASON = "invalid after normalisation"
CANONICAL = re.compile(r"[A-Z0-9]{4,64}")
_STRIP = str.maketrans({" ": None, "\t": None, "-": None, "O": "0", "I": "1", "L": "1"})
INVALIDATABLE = ("Inactive", "Available", "Failed")
# Leading or trailing whitespace; the same on PostgreSQL (ARE) and SQLite (Python re).
EDGE_SPACE = r"^\s|\s$"


def _canonical(text):
    return text.strip().upper().translate(_STRIP)


def _display(text):
    return text.strip().upper()


def _taken(Code, CodeType, canonical, *, code_id=None, code_type_id=None):
    codes = Code.objects.filter(canonical=canonical)
    if code_id is not None:
        codes = codes.exclude(pk=code_id)
    types = CodeType.objects.filter(canonical_scan_code=canonical)
    if code_type_id is not None:
        codes = codes.exclude(is_shared_anchor=True, code_type_id=code_type_id)
        types = types.exclude(pk=code_type_id)
    return codes.exists() or types.exists()


def _audit(AuditEvent, now, **fields):
    AuditEvent.objects.create(
        at=now,
        actor_kind="system",
        actor_id="migration",
        actor_label="system (migration 0010)",
        **fields,
    )


def normalise(apps, schema_editor):
    Code = apps.get_model("redemption", "Code")
    CodeType = apps.get_model("redemption", "CodeType")
    AuditEvent = apps.get_model("redemption", "AuditEvent")
    now = timezone.now()
    listed = []

    bad_types = CodeType.objects.filter(
        Q(canonical_scan_code__regex=EDGE_SPACE) | Q(scan_code__regex=EDGE_SPACE)
    ).order_by("pk")
    for ct in bad_types:
        old = {"scanCode": ct.scan_code, "canonical": ct.canonical_scan_code}
        canonical = _canonical(ct.canonical_scan_code)
        if CANONICAL.fullmatch(canonical) and not _taken(
            Code, CodeType, canonical, code_type_id=ct.pk
        ):
            display = _display(ct.scan_code)
            Code.objects.filter(code_type_id=ct.pk, is_shared_anchor=True).update(
                canonical=canonical, scan_code=display, updated_at=now
            )
            CodeType.objects.filter(pk=ct.pk).update(
                scan_code=display,
                canonical_scan_code=canonical,
                version=F("version") + 1,
                updated_at=now,
            )
            outcome = f"fixed: now {display}"
        else:
            CodeType.objects.filter(pk=ct.pk).update(
                is_disabled=True, version=F("version") + 1, updated_at=now
            )
            why = REASON if CANONICAL.fullmatch(canonical) else INVALID_REASON
            outcome = f"disabled: {why} (as {canonical!r})"
        _audit(
            AuditEvent,
            now,
            action="code_type.normalise",
            code_type_name=ct.name,
            target_id=str(ct.pk),
            scan_code=_display(ct.scan_code)[:80],
            details={**old, "outcome": outcome},
        )
        listed.append(f"shared type {ct.name}: scan code {old['canonical']!r} {outcome}")

    bad_codes = (
        Code.objects.filter(is_shared_anchor=False)
        .filter(Q(canonical__regex=EDGE_SPACE) | Q(scan_code__regex=EDGE_SPACE))
        .select_related("code_type")
        .order_by("created_at", "pk")
    )
    for code in bad_codes:
        old = {"scanCode": code.scan_code, "canonical": code.canonical}
        canonical = _canonical(code.canonical)
        valid = CANONICAL.fullmatch(canonical) is not None
        if valid and not _taken(Code, CodeType, canonical, code_id=code.pk):
            display = _display(code.scan_code)
            Code.objects.filter(pk=code.pk).update(
                canonical=canonical,
                scan_code=display,
                version=F("version") + 1,
                updated_at=now,
            )
            outcome = f"fixed: now {display}"
        elif code.state in INVALIDATABLE:
            reason = REASON if valid else INVALID_REASON
            Code.objects.filter(pk=code.pk).update(
                state="Invalidated",
                invalidated_at=now,
                invalidation_reason=reason,
                version=F("version") + 1,
                updated_at=now,
            )
            outcome = f"invalidated: {reason} (as {canonical!r})"
        else:
            why = REASON if valid else INVALID_REASON
            outcome = f"left {code.state}: {why} (as {canonical!r})"
        _audit(
            AuditEvent,
            now,
            action="code.normalise",
            code_type_name=code.code_type.name,
            target_id=str(code.pk),
            scan_code=_display(code.scan_code)[:80],
            details={**old, "outcome": outcome},
        )
        listed.append(f"code {code.pk} ({code.code_type.name}): {old['canonical']!r} {outcome}")

    if listed:
        print(f"\n  Scan codes with surrounding whitespace: {len(listed)}")
        for line in listed:
            print(f"    {line}")


class Migration(migrations.Migration):
    dependencies = [
        ("redemption", "0009_profile_recent_indexes"),
    ]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
