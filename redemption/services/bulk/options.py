"""Checks on a generation request: quantity, initial state, code shape, type and code space."""

from typing import Any

from django.db.models import Sum

from redemption import codes, rules
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.models import Batch, CodeType
from redemption.selectors import code_type_get
from redemption.services._common import (
    check_initial_state,
    check_json_object,
    check_type_in_use,
    require_ops,
)

# `algorithmDetails` keys. `length` lives here (not at the top level) to keep the brainCloud
# request shape: {algorithmName, algorithmDetails}. It counts the check character, if any.
ALGORITHM_DETAIL_KEYS = frozenset({"includeCheck", "length"})


def check_quantity(quantity: int, limit: int) -> int:
    """Return `quantity` if it is a whole number from 1 to `limit`, else raise."""
    if not rules.is_whole_number_in(quantity, rules.QUANTITY_MIN, limit):
        raise exc.invalid_fields(
            {"quantity": "must be " + rules.whole_number_rule(rules.QUANTITY_MIN, limit)}
        )
    return quantity


def shape_from_options(
    *, prefix: str | None, algorithm: str | None, algorithm_details: dict[str, Any] | None
) -> codes.CodeShape:
    """Validate algorithmName, prefix and algorithmDetails and return the code shape.

    `algorithmDetails` is free-form JSON to the type checker, so its keys and values are
    checked here.
    """
    details = {} if algorithm_details is None else algorithm_details
    if not isinstance(details, dict):
        raise exc.invalid_fields({"algorithmDetails": "must be an object"})
    unknown = sorted(set(details) - ALGORITHM_DETAIL_KEYS)
    if unknown:
        raise exc.invalid_fields(
            {
                f"algorithmDetails.{k}": "unknown field (allowed: includeCheck, length)"
                for k in unknown
            }
        )
    include_check = details.get("includeCheck", False)
    if not isinstance(include_check, bool):
        raise exc.invalid_fields({"algorithmDetails.includeCheck": "must be true or false"})
    length = details.get("length")
    if length is not None and not rules.is_whole_number(length):
        raise exc.invalid_fields({"algorithmDetails.length": "must be a whole number"})
    try:
        shape = codes.make_shape(
            algorithm=algorithm, length=length, prefix=prefix, include_check=include_check
        )
    except ValueError as err:
        field, _, message = str(err).partition(": ")
        field = "algorithmDetails.length" if field == "length" else field
        raise exc.invalid_fields({field: message}) from None
    if length is not None and length != shape.length:
        raise exc.invalid_fields(
            {"algorithmDetails.length": f"{shape.algorithm} codes are always {shape.length} long"}
        )
    return shape


def code_type_for_new_codes(name: str) -> CodeType:
    """The enabled personal code type that generated or imported codes go into."""
    ct = code_type_get(name)
    if ct.is_shared:
        raise exc.TypeMustBeSingleUseError()
    check_type_in_use(ct)
    return ct


def code_type_for_history(name: str) -> CodeType:
    """The enabled code type (personal or shared) that a migration import fills."""
    ct = code_type_get(name)
    if ct.is_disabled:
        raise exc.CodeTypeDisabledError()
    return ct


def already_issued(shape: codes.CodeShape) -> int:
    """How many codes of this shape (algorithm, length, prefix, check) were ever generated."""
    rows = (
        Batch.objects.filter(
            kind=Batch.Kind.GENERATE,
            algorithm=shape.algorithm,
            length=shape.length,
            include_check=shape.include_check,
        )
        .values("prefix")
        .annotate(n=Sum("quantity"))
        .order_by()
    )
    # Prefixes are stored in display form; "AB-C" and "ABC" share one canonical space.
    return sum(r["n"] or 0 for r in rows if codes.canonical(r["prefix"]) == shape.prefix_canonical)


def check_feasible(shape: codes.CodeShape, quantity: int) -> None:
    """Refuse a quantity that would use too much of the shape's code space."""
    issued = already_issued(shape)
    if not codes.feasible(shape, quantity=quantity, already_issued=issued):
        largest = max(0, (shape.space - issued) // codes.SPACE_SAFETY_FACTOR)
        raise exc.InsufficientCodeSpaceError(details={"quantity": quantity, "maxQuantity": largest})


def prepare_generation(
    *,
    actor: Actor,
    code_type_name: str,
    quantity: int,
    limit: int,
    state: str | None,
    custom_code_info: dict[str, Any] | None,
    prefix: str | None,
    algorithm: str | None,
    algorithm_details: dict[str, Any] | None,
) -> tuple[CodeType, int, str, dict[str, Any], codes.CodeShape]:
    """Check a generation request; return its type, quantity, state, info and code shape."""
    require_ops(actor)
    quantity = check_quantity(quantity, limit)
    state = check_initial_state(state)
    info = check_json_object(custom_code_info, "customCodeInfo")
    shape = shape_from_options(
        prefix=prefix, algorithm=algorithm, algorithm_details=algorithm_details
    )
    ct = code_type_for_new_codes(code_type_name)
    check_feasible(shape, quantity)
    return ct, quantity, state, info, shape
