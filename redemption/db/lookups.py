"""Reads that run before every redeem, in raw SQL built once per database.

Building these queries through the ORM on every call cost more CPU than the database spent
answering them. Each has a parity test (tests/test_db_parity.py) holding the plain ORM query
for the same question.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models.expressions import Col

from redemption.db.names import column, table
from redemption.models import Code, CodeType, RedeemFailure, ServerKey


def code_with_type(canon: str) -> Code | None:
    """The code (personal or shared anchor) with this canonical form, its type attached.

    Rows are turned into models with the same converters the ORM uses.
    """
    with connection.cursor() as cursor:
        cursor.execute(_code_with_type_plan().sql, [canon])
        row = cursor.fetchone()
    return None if row is None else code_with_type_from_row(row)


def code_with_type_from_row(row: Sequence[Any], type_fields: tuple[str, ...] | None = None) -> Code:
    """The code and its type from a row holding every column of the code, then the columns of
    its type: every one, or only those of `type_fields` (field names, in that order; the type's
    other fields are then deferred, read from the database only if something asks for them)."""
    plan = _code_with_type_plan(type_fields)
    values = [
        _converted(value, converters, col)
        for value, (converters, col) in zip(row, plan.columns, strict=True)
    ]
    split = len(plan.code_names)
    code = Code.from_db(connection.alias, plan.code_names, values[:split])
    code.code_type = CodeType.from_db(connection.alias, plan.type_names, values[split:])
    return code


@dataclass(frozen=True)
class _Plan:
    sql: str
    code_names: list[str]
    type_names: list[str]
    columns: list[tuple[list[Any], Col]]


_PLANS: dict[tuple[str, tuple[str, ...] | None], _Plan] = {}


def _code_with_type_plan(only: tuple[str, ...] | None = None) -> _Plan:
    plan = _PLANS.get((connection.vendor, only))
    if plan is None:
        code_fields = Code._meta.concrete_fields
        type_fields: Sequence[Any] = CodeType._meta.concrete_fields
        if only is not None:
            type_fields = [CodeType._meta.get_field(name) for name in only]
        # get_col, as the ORM does: a foreign key's column converts like the key it points to.
        cols = [f.get_col("c") for f in code_fields] + [f.get_col("t") for f in type_fields]
        select = ", ".join(f"{c.alias}.{column(c.target.model, c.target.name)}" for c in cols)
        sql = (
            f"SELECT {select} FROM {table(Code)} c JOIN {table(CodeType)} t"
            f" ON t.{column(CodeType, 'pk')} = c.{column(Code, 'code_type')}"
            f" WHERE c.{column(Code, 'canonical')} = %s"
        )
        columns = [
            (connection.ops.get_db_converters(c) + c.get_db_converters(connection), c) for c in cols
        ]
        plan = _Plan(
            sql=sql,
            code_names=[f.attname for f in code_fields],
            type_names=[f.attname for f in type_fields],
            columns=columns,
        )
        _PLANS[(connection.vendor, only)] = plan
    return plan


def _converted(value: Any, converters: list[Any], col: Col) -> Any:
    for converter in converters:
        value = converter(value, col, connection)
    return value


# The row a failed-redeem count answers for a server key that still works (not a bucket name:
# buckets start with "profile:" or "ip:").
KEY_ALIVE = "server-key-alive"


def failures_since(
    buckets: list[str], since: datetime, *, key_alive: tuple[int, datetime] | None = None
) -> dict[str, int]:
    """Failed redeems per rate-limit bucket recorded after `since`, in one statement.

    With `key_alive=(key_id, now)` the same statement also says whether that server key still
    works (not revoked, not expired at `now`): KEY_ALIVE is 1 then, else 0. A user token's
    redeem checks its minting key this way without a round trip of its own.
    """
    bucket, at = column(RedeemFailure, "bucket"), column(RedeemFailure, "at")
    placeholders = ", ".join(["%s"] * len(buckets))
    sql = (
        f"SELECT {bucket}, COUNT(*) FROM {table(RedeemFailure)}"
        f" WHERE {bucket} IN ({placeholders}) AND {at} > %s GROUP BY {bucket}"
    )
    params: list[Any] = [*buckets, connection.ops.adapt_datetimefield_value(since)]
    if key_alive is not None:
        key_id, now = key_alive
        revoked, expires = column(ServerKey, "revoked_at"), column(ServerKey, "expires_at")
        sql += (
            f" UNION ALL SELECT '{KEY_ALIVE}', COUNT(*) FROM {table(ServerKey)}"
            f" WHERE {column(ServerKey, 'pk')} = %s AND {revoked} IS NULL"
            f" AND ({expires} IS NULL OR {expires} > %s)"
        )
        params += [key_id, connection.ops.adapt_datetimefield_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())
