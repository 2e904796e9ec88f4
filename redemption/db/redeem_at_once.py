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

The statement lives in a PL/pgSQL function, `install` (re)creates it from the models after every
`migrate`: PL/pgSQL keeps the plan of the statement per connection, so a redeem neither sends nor
parses nor plans the whole CTE again (planning alone cost as much as running it), and nothing
needs server-side prepared statements, which PgBouncer's transaction mode would break. Its
parameters and result are plain column types, so no table depends on it. The call sends every
parameter as text (each cast in the call), and the function returns the code with only the type
fields the answer reads (ANSWER_TYPE_FIELDS): per redeem, that saved the driver about 90 µs of
finding dumpers for datetimes, lists and JSON on each new cursor, and the rows 20 µs.

Exactly once: the UPDATE re-checks the code's state on the row it locks (PostgreSQL re-reads a
row changed by a concurrent transaction before applying its WHERE), as every claim does.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.json import Jsonb

from redemption.actors import Profile
from redemption.db import claims
from redemption.db.audit import event_fields, event_params
from redemption.db.lookups import code_with_type_from_row
from redemption.db.names import field
from redemption.models import (
    AuditEvent,
    Code,
    CodeType,
    RedeemFailure,
    ServerKey,
)

FUNCTION = "redemption_redeem_at_once"

# The type's fields the function returns: what a redeem's answer reads of it (`code_record`:
# its name and use type). The others stay deferred on the returned code's type.
ANSWER_TYPE_FIELDS = ("id", "name", "use_type")

# Audit columns taken from the moved row rather than from parameters.
_FROM_ROW = {
    "code_type_name": "moved.t_name",
    "target_id": "moved.c_id::text",
    "scan_code": "moved.c_scan",
}
# The function's leading parameters: (name, type), in call order.
_LEADING = (
    ("p_canon", "text"),
    ("p_sources", "text[]"),
    ("p_now", "timestamp with time zone"),
    ("p_type", "text"),
    ("p_buckets", "text[]"),
    ("p_limits", "integer[]"),
    ("p_since", "timestamp with time zone"),
    ("p_key", "bigint"),
)


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
    # Every parameter goes as text, cast in the call: one dumper (str's) for the driver to find
    # on each new cursor, where datetimes, lists and JSON each cost it a lookup of their own.
    params: list[Any] = [
        canon,
        _sources_text(),
        _text(now),
        code_type_name,
        _text_array([bucket for bucket, _ in limits.buckets]),
        _int_array([limit for _, limit in limits.buckets]),
        _text(limits.since),
        None if limits.key_id is None else str(limits.key_id),
    ]
    params += [
        _text(f.get_db_prep_save(v, connection))
        for f, v in zip(_written_fields(), values.values(), strict=True)
    ]
    params += [_text(v) for v in event_params(at=now, row=audit_row, fields=_given_audit_fields())]
    with connection.cursor() as cursor:
        cursor.execute(_call_sql(), params)
        row = cursor.fetchone()
    return None if row is None else code_with_type_from_row(row, ANSWER_TYPE_FIELDS)


def install(using: str = "default") -> bool:
    """Create or replace the function on database `using` when it differs from what the models
    give (a hash of its definition is kept as its comment); True if it was (re)created."""
    wrapper = connections[using]
    if wrapper.vendor != "postgresql":
        return False
    ddl = _function_sql(wrapper)
    digest = hashlib.sha256(ddl.encode()).hexdigest()
    with transaction.atomic(using=using), wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p"
            " WHERE p.proname = %s AND p.pronamespace = current_schema()::regnamespace",
            [FUNCTION],
        )
        found = cursor.fetchall()
        if found == [(digest,)]:
            return False
        if found:
            cursor.execute(f"DROP FUNCTION {FUNCTION}")
        cursor.execute(ddl)
        cursor.execute(f"COMMENT ON FUNCTION {FUNCTION} IS '{digest}'")
    return True


def after_migrate(*, using: str, **kwargs: Any) -> None:
    """post_migrate receiver (connected in apps.ready)."""
    install(using)


# The models' metadata is fixed once they load: these are read on every redeem, so kept.
@cache
def _written_fields() -> tuple[Any, ...]:
    """The code's fields a redeem writes, in claims.REDEEM_FIELDS order."""
    return tuple(field(Code, name) for name in claims.REDEEM_FIELDS)


@cache
def _given_audit_fields() -> tuple[Any, ...]:
    """The audit event's fields the function takes as parameters; the rest come from the row."""
    return tuple(f for f in event_fields() if f.name not in _FROM_ROW)


def _parameters(wrapper: BaseDatabaseWrapper) -> list[tuple[str, str]]:
    """Every parameter of the function as (name, SQL type), in call order."""
    written = [(f"w_{i}", _sql_type(f, wrapper)) for i, f in enumerate(_written_fields())]
    audited = [(f"a_{i}", _sql_type(f, wrapper)) for i, f in enumerate(_given_audit_fields())]
    return [*_LEADING, *written, *audited]


def _results(wrapper: BaseDatabaseWrapper) -> list[tuple[str, str]]:
    """The function's result columns as (expression over `moved`, SQL type): every column of
    the code, then its type's ANSWER_TYPE_FIELDS, the order `code_with_type_from_row` reads."""
    q = wrapper.ops.quote_name
    code_columns = [
        (f"moved.{q(f.column or '')}", _sql_type(f, wrapper)) for f in Code._meta.concrete_fields
    ]
    type_columns = [(f"moved.t{i}", _sql_type(f, wrapper)) for i, f in enumerate(_answer_type())]
    return [*code_columns, *type_columns]


def _sql_type(column_field: Any, wrapper: BaseDatabaseWrapper) -> str:
    sql_type = column_field.cast_db_type(wrapper)
    if not sql_type:
        raise ImproperlyConfigured(f"{column_field} has no SQL type for the redeem function")
    return str(sql_type)


_CALL: dict[str, str] = {}


def _call_sql() -> str:
    """SELECT * FROM the function, every parameter cast to its type."""
    found = _CALL.get(connection.alias)
    if found is None:
        casts = ", ".join(f"%s::{sql_type}" for _, sql_type in _parameters(connection))
        found = _CALL[connection.alias] = f"SELECT * FROM {FUNCTION}({casts})"
    return found


def _function_sql(wrapper: BaseDatabaseWrapper) -> str:
    """CREATE FUNCTION: the data-modifying CTE over the function's parameters."""
    q = wrapper.ops.quote_name
    code, ct = q(Code._meta.db_table), q(CodeType._meta.db_table)

    def col(model: Any, name: str) -> str:
        return q(field(model, name).column or "")

    c_col = lambda name: f"c.{col(Code, name)}"  # noqa: E731
    t_col = lambda name: f"t.{col(CodeType, name)}"  # noqa: E731
    failures, keys = q(RedeemFailure._meta.db_table), q(ServerKey._meta.db_table)
    bucket, at = col(RedeemFailure, "bucket"), col(RedeemFailure, "at")
    revoked, expires = col(ServerKey, "revoked_at"), col(ServerKey, "expires_at")
    where = [
        f"{c_col('canonical')} = p_canon",
        f"NOT {c_col('is_shared_anchor')}",
        f"{c_col('state')} = ANY (p_sources)",
        f"NOT {t_col('is_disabled')}",
        f"{t_col('archived_at')} IS NULL",
        f"({t_col('valid_start')} IS NULL OR {t_col('valid_start')} <= p_now)",
        f"({t_col('valid_end')} IS NULL OR {t_col('valid_end')} > p_now)",
        f"{t_col('fulfillment_url')} = ''",
        f"(p_type IS NULL OR {t_col('name')} = p_type)",
        f"NOT EXISTS (SELECT 1 FROM unnest(p_buckets, p_limits) AS b(bucket, lim)"
        f" WHERE (SELECT count(*) FROM {failures} f"
        f" WHERE f.{bucket} = b.bucket AND f.{at} > p_since) >= b.lim)",
        f"(p_key IS NULL OR EXISTS (SELECT 1 FROM {keys} k WHERE k.{col(ServerKey, 'pk')} = p_key"
        f" AND k.{revoked} IS NULL AND (k.{expires} IS NULL OR k.{expires} > p_now)))",
    ]
    type_columns = [f"t.{q(f.column or '')}" for f in _answer_type()]
    target_select = ", ".join(
        [f"{c_col('pk')} AS target_id", *(f"{c} AS t{i}" for i, c in enumerate(type_columns))]
    )
    sets = [f"{col(Code, name)} = w_{i}" for i, name in enumerate(claims.REDEEM_FIELDS)]
    version = col(Code, "version")
    sets.append(f"{version} = {code}.{version} + 1")
    returning = [f"{code}.{q(f.column or '')}" for f in Code._meta.concrete_fields]
    returning += [f"target.t{i}" for i in range(len(type_columns))]
    returning += [
        f"target.t{_type_index('name')} AS t_name",
        f"{code}.{col(Code, 'pk')} AS c_id",
        f"{code}.{col(Code, 'scan_code')} AS c_scan",
    ]
    audit_fields = event_fields()
    audit_columns = ", ".join(q(f.column or "") for f in audit_fields)
    audit_values, given = [], iter(range(len(_given_audit_fields())))
    for f in audit_fields:
        audit_values.append(_FROM_ROW.get(f.name) or f"a_{next(given)}")
    results = _results(wrapper)
    parameters = ", ".join(f"{name} {sql_type}" for name, sql_type in _parameters(wrapper))
    out = ", ".join(f"o_{i} {sql_type}" for i, (_, sql_type) in enumerate(results))
    selection = ", ".join(f"{expression}::{sql_type}" for expression, sql_type in results)
    return (
        f"CREATE FUNCTION {FUNCTION}({parameters}) RETURNS TABLE ({out})"
        " LANGUAGE plpgsql AS $redeem$\n#variable_conflict use_column\nBEGIN\nRETURN QUERY"
        f" WITH target AS (SELECT {target_select} FROM {code} c JOIN {ct} t"
        f" ON {t_col('pk')} = c.{col(Code, 'code_type')} WHERE {' AND '.join(where)}),"
        f" moved AS (UPDATE {code} SET {', '.join(sets)} FROM target"
        f" WHERE {code}.{col(Code, 'pk')} = target.target_id"
        f" AND {code}.{col(Code, 'state')} = ANY (p_sources)"
        f" RETURNING {', '.join(returning)}),"
        f" logged AS (INSERT INTO {q(AuditEvent._meta.db_table)} ({audit_columns})"
        f" SELECT {', '.join(audit_values)} FROM moved)"
        f" SELECT {selection} FROM moved;\nEND\n$redeem$"
    )


def _type_index(name: str) -> int:
    return ANSWER_TYPE_FIELDS.index(name)


def _answer_type() -> list[Any]:
    return [CodeType._meta.get_field(name) for name in ANSWER_TYPE_FIELDS]


@cache
def _sources_text() -> str:
    return _text_array(claims.REDEEM_SOURCES)


def _text(value: Any) -> Any:
    """A parameter as the text its SQL type reads (None stays NULL; anything else not listed
    here goes to the driver as it is)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("the redeem function takes aware datetimes only")
        return value.isoformat()
    if isinstance(value, Jsonb):
        return (value.dumps or json.dumps)(value.obj)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value


def _text_array(values: Sequence[str]) -> str:
    """A text[] literal: every element double-quoted, its backslashes and quotes escaped."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _int_array(values: Sequence[int]) -> str:
    return "{" + ",".join(str(int(v)) for v in values) + "}"
