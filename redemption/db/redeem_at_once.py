"""The common redeem — a personal code, no webhook, nothing in the way — as one statement.

Most redeems are that kind. On PostgreSQL one data-modifying CTE finds the code by its canonical
form, checks its type (enabled, not archived, inside its window, no fulfilment, the type the
caller named), the failed-redeem counters and the minting server key, moves the code to
Redeemed, writes the audit row and returns the code with its type: one round trip where the
full path takes three.

No row back means "not that simple", never a refusal: the caller then runs the full redeem,
which checks everything again and explains the answer (or starts a fulfilment attempt, or
redeems a shared code). So a condition missing here could only let a redeem through that the
full path refuses: every type-level refusal of `services.redeem._redeem` must appear below,
and tests/test_redeem_at_once.py holds the two paths to the same answers.

Exactly once: the UPDATE re-checks the code's state on the row it locks (PostgreSQL re-reads a
row changed by a concurrent transaction before applying its WHERE), as every claim does.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from redemption.actors import Profile
from redemption.db import claims
from redemption.db.lookups import code_with_type_from_row
from redemption.db.names import column, field, table
from redemption.models import (
    AuditEvent,
    Code,
    CodeType,
    RedeemFailure,
    ServerKey,
)

# Audit columns taken from the moved row rather than from parameters.
_FROM_ROW = {
    "code_type_name": "moved.t_name",
    "target_id": "moved.c_id::text",
    "scan_code": "moved.c_scan",
}


@dataclass(frozen=True)
class Limits:
    """What the statement must find true besides the code: counters under their limits, a key.

    `buckets` are (bucket, limit) pairs counted in the database since `since` (none when the
    counters live in the cache, which the caller has already read); `key_id` is the server key
    that minted the caller's user token, which must still work at `now`.
    """

    buckets: Sequence[tuple[str, int]]
    since: datetime
    key_id: int | None


def supported() -> bool:
    """Whether this database runs the one-statement redeem (data-modifying CTEs: PostgreSQL)."""
    return connection.vendor == "postgresql"


def redeem_at_once(
    *,
    canon: str,
    code_type_name: str | None,
    profile: Profile,
    info: dict[str, Any],
    now: datetime,
    limits: Limits,
    audit_row: dict[str, Any],
) -> Code | None:
    """Redeem the code `canon` for `profile` if nothing stands in the way; else None.

    `audit_row` holds the audit event's columns but its time and the three the code gives
    (type name, code id, scan code).
    """
    values = claims.redeem_values(profile=profile, now=now, info=info)
    sql = _sql(
        buckets=len(limits.buckets),
        named_type=code_type_name is not None,
        key=limits.key_id is not None,
        names=tuple(values),
    )
    dt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [canon, *claims.REDEEM_SOURCES, dt(now), dt(now)]
    if code_type_name is not None:
        params.append(code_type_name)
    for bucket, limit in limits.buckets:
        params += [bucket, dt(limits.since), limit]
    if limits.key_id is not None:
        params += [limits.key_id, dt(now)]
    params += [field(Code, name).get_db_prep_save(v, connection) for name, v in values.items()]
    params += claims.REDEEM_SOURCES
    event = {**audit_row, "at": now}
    params += [
        f.get_db_prep_save(event[f.name] if f.name in event else f.get_default(), connection)
        for f in _audit_fields()
        if f.name not in _FROM_ROW
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else code_with_type_from_row(row)


def _audit_fields() -> list[Any]:
    return [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]


_SQL: dict[tuple[Any, ...], str] = {}


def _sql(*, buckets: int, named_type: bool, key: bool, names: tuple[str, ...]) -> str:
    """The statement for one shape of call, built once from the models' metadata; `names` are
    the code's fields the redeem writes (claims.redeem_values)."""
    shape = (buckets, named_type, key, names)
    found = _SQL.get(shape)
    if found is not None:
        return found
    code, ct = table(Code), table(CodeType)
    c_col = lambda name: f"c.{column(Code, name)}"  # noqa: E731
    t_col = lambda name: f"t.{column(CodeType, name)}"  # noqa: E731
    sources = ", ".join(["%s"] * len(claims.REDEEM_SOURCES))
    where = [
        f"{c_col('canonical')} = %s",
        f"NOT {c_col('is_shared_anchor')}",
        f"{c_col('state')} IN ({sources})",
        f"NOT {t_col('is_disabled')}",
        f"{t_col('archived_at')} IS NULL",
        f"({t_col('valid_start')} IS NULL OR {t_col('valid_start')} <= %s)",
        f"({t_col('valid_end')} IS NULL OR {t_col('valid_end')} > %s)",
        f"{t_col('fulfillment_url')} = ''",
    ]
    if named_type:
        where.append(f"{t_col('name')} = %s")
    bucket, at = column(RedeemFailure, "bucket"), column(RedeemFailure, "at")
    where += [
        f"(SELECT COUNT(*) FROM {table(RedeemFailure)} f"
        f" WHERE f.{bucket} = %s AND f.{at} > %s) < %s"
    ] * buckets
    if key:
        revoked, expires = column(ServerKey, "revoked_at"), column(ServerKey, "expires_at")
        where.append(
            f"EXISTS (SELECT 1 FROM {table(ServerKey)} k WHERE k.{column(ServerKey, 'pk')} = %s"
            f" AND k.{revoked} IS NULL AND (k.{expires} IS NULL OR k.{expires} > %s))"
        )
    type_columns = [f"t.{column(CodeType, f.name)}" for f in CodeType._meta.concrete_fields]
    target_select = ", ".join(
        [f"{c_col('pk')} AS target_id", *(f"{c} AS t{i}" for i, c in enumerate(type_columns))]
    )
    sets = [f"{column(Code, name)} = %s" for name in names]
    version = column(Code, "version")
    sets.append(f"{version} = {code}.{version} + 1")
    returning = [f"{code}.{column(Code, f.name)}" for f in Code._meta.concrete_fields]
    returning += [f"target.t{i}" for i in range(len(type_columns))]
    selection = [f"moved.{column(Code, f.name)}" for f in Code._meta.concrete_fields]
    selection += [f"moved.t{i}" for i in range(len(type_columns))]
    returning += [
        f"target.t{_type_index('name')} AS t_name",
        f"{code}.{column(Code, 'pk')} AS c_id",
        f"{code}.{column(Code, 'scan_code')} AS c_scan",
    ]
    audit_fields = _audit_fields()
    audit_columns = ", ".join(column(AuditEvent, f.name) for f in audit_fields)
    audit_values = ", ".join(_FROM_ROW.get(f.name, "%s") for f in audit_fields)
    sql = (
        f"WITH target AS (SELECT {target_select} FROM {code} c JOIN {ct} t"
        f" ON {t_col('pk')} = c.{column(Code, 'code_type')} WHERE {' AND '.join(where)}),"
        f" moved AS (UPDATE {code} SET {', '.join(sets)} FROM target"
        f" WHERE {code}.{column(Code, 'pk')} = target.target_id"
        f" AND {code}.{column(Code, 'state')} IN ({sources})"
        f" RETURNING {', '.join(returning)}),"
        f" logged AS (INSERT INTO {table(AuditEvent)} ({audit_columns})"
        f" SELECT {audit_values} FROM moved)"
        f" SELECT {', '.join(selection)} FROM moved"
    )
    _SQL[shape] = sql
    return sql


def _type_index(name: str) -> int:
    return [f.name for f in CodeType._meta.concrete_fields].index(name)
