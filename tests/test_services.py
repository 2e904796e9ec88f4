"""Service rules that are not state transitions: names, windows, caps, inputs."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from redemption import codes
from redemption import exceptions as exc
from redemption.actors import Profile
from redemption.models import AuditEvent, Batch, Code, CodeType, SharedRedemption, State
from redemption.services import (
    batch_invalidate,
    code_add,
    code_type_create,
    code_type_update,
    code_update_custom_info,
    redeem,
    shared_redemption_delete,
)
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db


def test_ops_creates_both_kinds_of_code_type(ops):
    personal = code_type_create(actor=ops, name="xmas-2026", description="Gift cards")
    shared = code_type_create(
        actor=ops, name="free.stuff_1", use_type="MULTI", scan_code="free-stuff", max_redemptions=5
    )

    assert personal.version == 1 and personal.scan_code is None
    assert shared.scan_code == "FREE-STUFF"
    assert shared.canonical_scan_code == "FREESTUFF"
    assert AuditEvent.objects.filter(action="code_type.create").count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "has space"}, "codeType"),
        ({"name": "x" * 65}, "codeType"),
        ({"name": ".."}, "codeType"),
        ({"name": "trailing\n"}, "codeType"),
        ({"name": "ok", "use_type": "BOTH"}, "codeUseType"),
        ({"name": "ok", "use_type": "MULTI"}, "scanCode"),
        ({"name": "ok", "scan_code": "ABCDE"}, "scanCode"),
        ({"name": "ok", "max_redemptions": 3}, "maxRedemptions"),
        ({"name": "ok", "custom_code_info": [1]}, "customCodeInfo"),
        ({"name": "ok", "custom_code_info": {"x": "y" * 17000}}, "customCodeInfo"),
        ({"name": "ok", "fulfillment": {"url": "ftp://x"}}, "fulfillment.url"),
        (
            {"name": "ok", "fulfillment": {"url": "http://x/", "maxRetries": 11}},
            "fulfillment.maxRetries",
        ),
    ],
)
def test_code_type_input_is_checked_field_by_field(ops, kwargs, field):
    with pytest.raises(exc.RedemptionError) as caught:
        code_type_create(actor=ops, **kwargs)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    assert field in caught.value.details["fields"]
    assert not CodeType.objects.exists()


def test_window_must_be_ordered(ops):
    now = timezone.now()
    # Two values in conflict, which no field's own rule states: 409, the field named.
    with pytest.raises(exc.ValidityWindowError) as caught:
        code_type_create(actor=ops, name="w", valid_start=now, valid_end=now)
    assert caught.value.http_status == 409
    assert list(caught.value.details["fields"]) == ["validEnd"]
    code_type_create(actor=ops, name="w", valid_start=now)
    with pytest.raises(exc.ValidityWindowError):
        code_type_update(actor=ops, name="w", valid_end=now - timedelta(seconds=1))


def test_duplicate_names_and_scan_codes_are_refused(ops):
    code_type_create(actor=ops, name="dup")
    with pytest.raises(exc.CodeTypeDuplicateError):
        code_type_create(actor=ops, name="dup")
    code_add(actor=ops, code_type_name="dup", scan_code="SAME-CODE")
    with pytest.raises(exc.CodeDuplicateError):
        code_type_create(actor=ops, name="shared", use_type="MULTI", scan_code="same code")
    assert not CodeType.objects.filter(name="shared").exists()


def test_personal_and_shared_codes_share_one_namespace(ops):
    code_type_create(actor=ops, name="p")
    code_type_create(actor=ops, name="s", use_type="MULTI", scan_code="PROMO-OIL")
    with pytest.raises(exc.CodeDuplicateError):
        code_add(actor=ops, code_type_name="p", scan_code="promo 011")


def test_the_database_refuses_a_second_canonical_code_even_without_the_service():
    ct = CodeTypeFactory()
    CodeFactory(code_type=ct, scan_code="ABCD-1234")
    with pytest.raises(IntegrityError), transaction.atomic():
        CodeFactory(code_type=ct, scan_code="abcd1234", canonical="ABCD1234")


def test_the_database_refuses_a_redeemed_code_without_redeemer():
    with pytest.raises(IntegrityError), transaction.atomic():
        CodeFactory(state=State.REDEEMED)


def test_the_database_refuses_two_shared_redemptions_for_one_profile():
    ct = SharedCodeTypeFactory()
    now = timezone.now()
    fields = {
        "code_type": ct,
        "profile_id": "p",
        "state": State.REDEEMED,
        "redeemed_at": now,
        "created_at": now,
        "updated_at": now,
    }
    SharedRedemption.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        SharedRedemption.objects.create(**fields)


def test_add_code_rules(ops, shared_type, code_type):
    code = code_add(actor=ops, code_type_name=code_type.name, scan_code="k7qm 3xj9")
    assert (code.scan_code, code.canonical, code.state) == ("K7QM 3XJ9", "K7QM3XJ9", "Inactive")
    assert code.batch.kind == Batch.Kind.ADD
    with pytest.raises(exc.TypeMustBeSingleUseError):
        code_add(actor=ops, code_type_name=shared_type.name, scan_code="ANY-CODE")
    with pytest.raises(exc.CodeTypeNotFoundError):
        code_add(actor=ops, code_type_name="missing", scan_code="ANY-CODE")
    with pytest.raises(exc.InvalidScanCodeError):
        code_add(actor=ops, code_type_name=code_type.name, scan_code="ab!")
    with pytest.raises(exc.InvalidParameterError):
        code_add(actor=ops, code_type_name=code_type.name, scan_code="GOOD1", state="Redeemed")
    with pytest.raises(exc.InvalidScanCodeError):  # 40 canonical characters, 81 as written
        code_add(actor=ops, code_type_name=code_type.name, scan_code="-".join("A" * 40) + "--")


def test_custom_info_needs_the_current_version(support):
    code = CodeFactory(state=State.INVALIDATED)
    updated = code_update_custom_info(
        actor=support, scan_code=code.scan_code, version=1, custom_code_info={"coins": 5}
    )
    assert (updated.version, updated.custom_code_info) == (2, {"coins": 5})
    with pytest.raises(exc.VersionMismatchError):
        code_update_custom_info(
            actor=support, scan_code=code.scan_code, version=1, custom_code_info={}
        )


def test_redeem_checks_type_disabled_and_window_in_order(system_actor, ops):
    ct = CodeTypeFactory()
    other = CodeTypeFactory()
    code = CodeFactory(code_type=ct, scan_code="WIND-0001")
    me = Profile("me")
    with pytest.raises(exc.CodeTypeMismatchError):
        redeem(actor=system_actor, profile=me, scan_code="WIND-0001", code_type_name=other.name)
    with pytest.raises(exc.CodeTypeNotFoundError):
        redeem(actor=system_actor, profile=me, scan_code="WIND-0001", code_type_name="nope")
    code_type_update(actor=ops, name=ct.name, is_disabled=True)
    with pytest.raises(exc.CodeTypeDisabledError):
        redeem(actor=system_actor, profile=me, scan_code="WIND-0001")
    now = timezone.now()
    code_type_update(
        actor=ops,
        name=ct.name,
        is_disabled=False,
        valid_start=now + timedelta(days=1),
        valid_end=now + timedelta(days=2),
    )
    with pytest.raises(exc.NotYetValidError):
        redeem(actor=system_actor, profile=me, scan_code="WIND-0001")
    code_type_update(
        actor=ops,
        name=ct.name,
        valid_start=now - timedelta(days=2),
        valid_end=now - timedelta(days=1),
    )
    with pytest.raises(exc.ExpiredError):
        redeem(actor=system_actor, profile=me, scan_code="WIND-0001")
    code.refresh_from_db()
    assert code.state == State.AVAILABLE


def test_a_typo_in_a_check_character_code_is_reported_as_invalid(system_actor):
    ct = CodeTypeFactory()
    shape = codes.make_shape(algorithm=None, length=12, prefix="GC", include_check=True)
    Batch.objects.create(
        code_type=ct,
        kind="generate",
        algorithm=shape.algorithm,
        length=shape.length,
        prefix=shape.prefix,
        include_check=True,
        quantity=1,
        created_at=timezone.now(),
    )
    display, canon = codes.generate_one(shape)
    body = canon[2:]
    typo = "GC" + body[:-1] + codes.ALPHABET[(codes.ALPHABET.index(body[-1]) + 1) % 32]
    with pytest.raises(exc.InvalidScanCodeError):
        redeem(actor=system_actor, profile=Profile("me"), scan_code=typo)
    # A well-formed but unknown code of the same shape is simply not found.
    with pytest.raises(exc.CodeNotFoundError):
        redeem(actor=system_actor, profile=Profile("me"), scan_code=display)


def test_failed_redeems_are_limited_per_profile(system_actor, settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 3
    me = Profile("guesser")
    for i in range(3):
        with pytest.raises(exc.CodeNotFoundError):
            redeem(actor=system_actor, profile=me, scan_code=f"GUESS-{i:04d}")
    CodeFactory(scan_code="REAL-CODE")
    with pytest.raises(exc.MaxFailedExceededError) as caught:
        redeem(actor=system_actor, profile=me, scan_code="REAL-CODE")
    assert 0 < caught.value.details["retryAfterSeconds"] <= settings.REDEEM_FAILED_WINDOW_SECONDS
    # Another profile is not affected; bad input does not count.
    assert redeem(actor=system_actor, profile=Profile("honest"), scan_code="REAL-CODE")


def test_deleting_a_shared_redemption_frees_its_slot(system_actor, ops):
    ct = SharedCodeTypeFactory(scan_code="ONESLOT", max_redemptions=1)
    redeem(actor=system_actor, profile=Profile("a"), scan_code="ONESLOT")
    with pytest.raises(exc.MaxRedemptionsReachedError):
        redeem(actor=system_actor, profile=Profile("b"), scan_code="ONESLOT")

    shared_redemption_delete(actor=ops, code_type_name=ct.name, profile_id="a")

    assert redeem(actor=system_actor, profile=Profile("b"), scan_code="ONESLOT")
    ct.refresh_from_db()
    assert ct.redemption_count == 1


def test_invalidate_batch_spares_redeemed_codes(ops, system_actor):
    ct = CodeTypeFactory()
    batch = Batch.objects.create(code_type=ct, kind="import", created_at=timezone.now())
    for i in range(4):
        CodeFactory(code_type=ct, batch=batch, scan_code=f"BATCH-{i:04d}")
    redeem(actor=system_actor, profile=Profile("p"), scan_code="BATCH-0000")

    count = batch_invalidate(actor=ops, batch_id=batch.pk, reason="leaked")

    assert count == 3
    states = sorted(Code.objects.filter(batch=batch).values_list("state", flat=True))
    assert states == ["Invalidated"] * 3 + ["Redeemed"]
    event = AuditEvent.objects.get(action="batch.invalidate")
    assert event.details == {"count": 3, "reason": "leaked"}
