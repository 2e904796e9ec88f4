"""Bulk inserts of new codes that let the unique index on `Code.canonical` settle collisions.

No code is looked up before it is inserted: a row whose canonical form is taken is dropped by
INSERT ... ON CONFLICT (canonical) DO NOTHING. SQLite gets one executemany. PostgreSQL first
COPYs the rows straight into the codes table inside a savepoint, every column computed here:
with random codes no row collides, and that is the fastest way in. Should the COPY hit a taken
canonical form (or refuse a value), the savepoint is rolled back and the rows take the exact
path: COPY into a session-local staging table, then one INSERT ... SELECT ... ON CONFLICT.
A caller that expects collisions (its last chunk had some) passes `direct=False` to skip the
attempt.

The column list is every concrete field of `Code`. Each row supplies its scan code, canonical
form, state and customCodeInfo; the id is a fresh UUIDv7; `activated_at` is the insert time for
rows that start Available; the caller gives the type, batch and time; every other column takes
its field default, or NULL. A new non-null field without a default fails here, loudly.
"""

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Field, JSONField

from redemption.ids import POSTGRES_UUID7_SQL, uuid7, uuid7_texts
from redemption.models import Code, State

# (display, canonical) when the batch shares one state and customCodeInfo, else
# (display, canonical, state, customCodeInfo as JSON text).
Row = tuple[str, ...]

_STAGE = "redemption_code_stage"
# Columns whose value comes from the row (or, for the id, is drawn per row).
_DIRECT_PER_ROW = ("id", "scan_code", "canonical", "state", "custom_code_info", "activated_at")
_PER_ROW = frozenset(_DIRECT_PER_ROW)


def returns_inserted() -> bool:
    """Whether `codes_insert_returning` can report which rows went in (PostgreSQL)."""
    return connection.vendor == "postgresql"


def codes_insert(
    rows: Sequence[Row],
    *,
    code_type_id: int,
    batch_id: UUID,
    now: datetime,
    state: str | None = None,
    info_json: str | None = None,
    direct: bool = True,
    copy_text: str | None = None,
) -> int:
    """Insert the rows whose canonical form is still free; return how many went in.

    With `state` and `info_json` given, rows are (display, canonical) pairs that all take
    them; otherwise each row carries its own state and customCodeInfo. `copy_text`, if given,
    is `copy_layout(...).text(rows)` with the same arguments, made ahead (PostgreSQL).
    """
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        if direct:
            layout = copy_layout(
                code_type_id=code_type_id,
                batch_id=batch_id,
                now=now,
                state=state,
                info_json=info_json,
            )
            lines = layout.lines(rows) if copy_text is None else (copy_text,)
            if _postgres_copy_direct(lines, layout):
                return len(rows)
        with connection.cursor() as cursor:
            _postgres_insert(
                cursor,
                rows,
                code_type_id=code_type_id,
                batch_id=batch_id,
                now=now,
                state=state,
                info_json=info_json,
                returning=False,
            )
            return cursor.rowcount
    return _sqlite_insert(
        rows,
        code_type_id=code_type_id,
        batch_id=batch_id,
        now=now,
        state=state,
        info_json=info_json,
    )


def codes_insert_returning(
    rows: Sequence[Row],
    *,
    code_type_id: int,
    batch_id: UUID,
    now: datetime,
    direct: bool = True,
) -> set[str]:
    """Insert (display, canonical, state, info) rows; return the canonical forms that went in.

    PostgreSQL only (see `returns_inserted`). A chunk whose COPY text was made ahead goes
    through `codes_copy_made_ahead` first, and comes here only if the database refused it.
    """
    if not returns_inserted():
        raise NotImplementedError("codes_insert_returning needs PostgreSQL")
    if not rows:
        return set()
    if direct:
        layout = copy_layout(code_type_id=code_type_id, batch_id=batch_id, now=now)
        if _postgres_copy_direct(layout.lines(rows), layout):
            return {row[1] for row in rows}
    with connection.cursor() as cursor:
        _postgres_insert(
            cursor,
            rows,
            code_type_id=code_type_id,
            batch_id=batch_id,
            now=now,
            state=None,
            info_json=None,
            returning=True,
        )
        return {row[0] for row in cursor.fetchall()}


def codes_copy_made_ahead(
    copy_text: str, *, code_type_id: int, batch_id: UUID, now: datetime
) -> bool:
    """COPY a chunk straight into the codes table from its COPY text, made ahead with
    `copy_layout(...).text(rows)` and the same arguments (PostgreSQL); False, and nothing
    stored, if the database refused any of its rows.

    The caller needs no rows for it: an import's database thread sends the text its reader
    thread wrote, and builds rows only for a chunk the database refused.
    """
    if not returns_inserted():
        raise NotImplementedError("codes_copy_made_ahead needs PostgreSQL")
    layout = copy_layout(code_type_id=code_type_id, batch_id=batch_id, now=now)
    return _postgres_copy_direct((copy_text,), layout)


def _fields() -> list[tuple[Field, str]]:
    """Every concrete field of Code with its quoted column name, in model order."""
    return [
        (field, connection.ops.quote_name(field.column))
        for field in Code._meta.concrete_fields
        if field.column is not None  # always true for a concrete field
    ]


def _constant(field: Field, *, code_type_id: int, batch_id: UUID, now: datetime) -> Any:
    """The value every row of one insert stores in a column the rows do not supply."""
    given: dict[str, Any] = {
        "code_type_id": code_type_id,
        "batch_id": batch_id,
        "created_at": now,
        "updated_at": now,
    }
    if field.attname in given:
        return given[field.attname]
    if field.has_default():
        return field.get_default()
    if field.null:
        return None
    raise ImproperlyConfigured(f"Code.{field.attname} has no value for a bulk insert.")


# COPY's text format: these characters are written as escapes.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# How many rows go to the server at a time, so that it inserts while the next ones are built.
_COPY_BLOCK = 1000


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_literal(field: Field, value: Any) -> str:
    """One column's value in COPY text format, for the columns every row shares."""
    if value is None:
        return "\\N"
    if isinstance(field, JSONField):
        return _copy_text(json.dumps(value, cls=field.encoder, separators=(",", ":")))
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return _copy_text(value)
    raise ImproperlyConfigured(f"Code.{field.attname}: no COPY text for {type(value).__name__}.")


@dataclass(frozen=True)
class CopyLayout:
    """How one insert's rows are written for a straight COPY into the codes table.

    Made by `copy_layout` in the connection's thread (it quotes the column names). `text` is
    pure Python, so a reader thread can write a chunk's COPY text while the database still
    takes the previous chunk.
    """

    columns: str
    tail: str  # what ends every line: the columns all rows share, then the line feed
    now_text: str
    one_state: bool  # rows are (display, canonical) pairs; state and info are in `tail`

    def lines(self, rows: Sequence[Row]) -> Iterator[str]:
        """Each row's line of COPY text, with a fresh id."""
        ids = uuid7_texts(len(rows))
        tail = self.tail
        if self.one_state:
            return (
                f"{id_}\t{_copy_text(row[0])}\t{_copy_text(row[1])}{tail}"
                for id_, row in zip(ids, rows, strict=True)
            )
        null, now_text, available = "\\N", self.now_text, State.AVAILABLE.value
        return (
            f"{id_}\t{_copy_text(row[0])}\t{_copy_text(row[1])}\t{_copy_text(row[2])}"
            f"\t{_copy_text(row[3])}\t{now_text if row[2] == available else null}{tail}"
            for id_, row in zip(ids, rows, strict=True)
        )

    def text(self, rows: Sequence[Row]) -> str:
        """The rows' whole COPY text: `codes_insert(copy_text=…)`, `codes_copy_made_ahead`."""
        return "".join(self.lines(rows))


def copy_layout(
    *,
    code_type_id: int,
    batch_id: UUID,
    now: datetime,
    state: str | None = None,
    info_json: str | None = None,
) -> CopyLayout:
    """The layout of a straight COPY of rows that `codes_insert` would get with these
    arguments; `state` and `info_json` given means rows are (display, canonical) pairs."""
    fields = _fields()
    shared = [(field, column) for field, column in fields if field.attname not in _PER_ROW]
    tail = "".join(
        "\t"
        + _copy_literal(
            field, _constant(field, code_type_id=code_type_id, batch_id=batch_id, now=now)
        )
        for field, _ in shared
    )
    by_name = {field.attname: column for field, column in fields}
    # The columns each row supplies come first, then the ones all rows share.
    columns = ", ".join(
        [by_name[name] for name in _DIRECT_PER_ROW] + [column for _, column in shared]
    )
    now_text = now.isoformat()
    if state is None:
        return CopyLayout(columns, tail + "\n", now_text, one_state=False)
    # One state and customCodeInfo for the batch: only id, scan code and canonical vary.
    null = "\\N"
    info = null if info_json is None else _copy_text(info_json)
    activated = now_text if state == State.AVAILABLE.value else null
    return CopyLayout(
        columns, f"\t{_copy_text(state)}\t{info}\t{activated}{tail}\n", now_text, one_state=True
    )


def ahead_layout(
    *,
    code_type_id: int,
    batch_id: UUID,
    now: datetime,
    state: str | None = None,
    info_json: str | None = None,
) -> CopyLayout | None:
    """`copy_layout` for a job that writes its chunks' COPY text ahead, or None where inserts
    take no COPY text (not PostgreSQL)."""
    if connection.vendor != "postgresql":
        return None
    return copy_layout(
        code_type_id=code_type_id, batch_id=batch_id, now=now, state=state, info_json=info_json
    )


def _postgres_copy_direct(lines: Iterable[str], layout: CopyLayout) -> bool:
    """COPY rows into the codes table in a savepoint; False (and nothing stored) if the
    database refused any of them, e.g. a canonical form already taken. `lines` is their COPY
    text in `layout`: `layout.lines(rows)`, sent a block at a time, or a text made ahead."""
    lines = iter(lines)
    try:
        # COPY is not one of the calls Django wraps: map driver errors to Django's here.
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.copy(f"COPY {Code._meta.db_table} ({layout.columns}) FROM STDIN") as copy,
        ):
            while block := "".join(islice(lines, _COPY_BLOCK)):
                copy.write(block)
    except (IntegrityError, DataError):
        return False
    return True


def _postgres_insert(
    cursor: Any,
    rows: Sequence[Row],
    *,
    code_type_id: int,
    batch_id: UUID,
    now: datetime,
    state: str | None,
    info_json: str | None,
    returning: bool,
) -> None:
    staged = "scan_code, canonical" if state is not None else "scan_code, canonical, state, info"
    # COPY is the fastest way in; the INSERT ... SELECT lets the unique index drop collisions.
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
        "(scan_code text, canonical text, state text, info text)"
    )
    cursor.execute(f"TRUNCATE {_STAGE}")
    with cursor.copy(f"COPY {_STAGE} ({staged}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    row_state = "COALESCE(s.state, %s::text)"
    per_row: dict[str, tuple[str, list[Any]]] = {
        "id": (POSTGRES_UUID7_SQL, []),
        "scan_code": ("s.scan_code", []),
        "canonical": ("s.canonical", []),
        "state": (row_state, [state]),
        "custom_code_info": ("COALESCE(s.info, %s::text)::jsonb", [info_json]),
        "activated_at": (
            f"CASE WHEN {row_state} = %s::text THEN %s::timestamptz END",
            [state, State.AVAILABLE.value, now],
        ),
    }
    columns: list[str] = []
    values: list[str] = []
    params: list[Any] = []
    for field, column in _fields():
        columns.append(column)
        if field.attname in _PER_ROW:
            sql, field_params = per_row[field.attname]
        else:
            value = _constant(field, code_type_id=code_type_id, batch_id=batch_id, now=now)
            sql = f"%s::{field.cast_db_type(connection)}"
            field_params = [field.get_db_prep_save(value, connection)]
        values.append(sql)
        params.extend(field_params)
    # In the rows' order (not the ids'): of two rows with one canonical form, the first wins.
    cursor.execute(
        f"INSERT INTO {Code._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {_STAGE} s ON CONFLICT (canonical) DO NOTHING"
        + (" RETURNING canonical" if returning else ""),
        params,
    )


def _sqlite_insert(
    rows: Sequence[Row],
    *,
    code_type_id: int,
    batch_id: UUID,
    now: datetime,
    state: str | None,
    info_json: str | None,
) -> int:
    fields = _fields()
    template: list[Any] = [
        None
        if field.attname in _PER_ROW
        else field.get_db_prep_save(
            _constant(field, code_type_id=code_type_id, batch_id=batch_id, now=now), connection
        )
        for field, _ in fields
    ]
    slot = {field.attname: i for i, (field, _) in enumerate(fields)}
    pk_field = Code._meta.get_field("id")
    now_db = Code._meta.get_field("activated_at").get_db_prep_save(now, connection)
    available = State.AVAILABLE.value

    def values() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            row_state = state if state is not None else row[2]
            value = template.copy()
            value[slot["id"]] = pk_field.get_db_prep_save(uuid7(), connection)
            value[slot["scan_code"]] = row[0]
            value[slot["canonical"]] = row[1]
            value[slot["state"]] = row_state
            value[slot["custom_code_info"]] = info_json if info_json is not None else row[3]
            value[slot["activated_at"]] = now_db if row_state == available else None
            yield tuple(value)

    columns = ", ".join(column for _, column in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        # executemany sums the changes of every row; a skipped conflict counts zero.
        cursor.executemany(
            f"INSERT INTO {Code._meta.db_table} ({columns}) VALUES ({placeholders}) "
            "ON CONFLICT (canonical) DO NOTHING",
            list(values()),
        )
        return cursor.rowcount


def codes_insert_values(rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert codes given as {field attname: value}, every column they leave out taking its
    field default; a taken canonical form raises IntegrityError (the caller decides).

    For imports that carry whole records (a migration import): one executemany, without the
    ORM's per-object cost.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        _postgres_insert_values(rows)
        return
    fields = _fields()
    defaults = {
        field.attname: field.get_default() if field.has_default() else None
        for field, _ in fields
        if field.attname != "id"
    }
    columns = ", ".join(column for _, column in fields)
    placeholders = ", ".join(["%s"] * len(fields))

    def prep(field: Field, value: Any) -> Any:
        # Text, numbers and NULL go in as they are; times, UUIDs and JSON need the backend's
        # form (the ORM would prepare every value, at many times the cost).
        if value is None or isinstance(value, str | int):
            return value
        return field.get_db_prep_save(value, connection)

    values = [
        tuple(
            prep(
                field,
                row[field.attname]
                if field.attname in row
                else (uuid7() if field.attname == "id" else defaults[field.attname]),
            )
            for field, _ in fields
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {Code._meta.db_table} ({columns}) VALUES ({placeholders})", values
        )


_FULL_STAGE = "redemption_code_full_stage"


def _postgres_insert_values(rows: Sequence[Mapping[str, Any]]) -> None:
    """COPY the rows into a staging table shaped like the codes table, then one INSERT: the
    count triggers run once per chunk, not once per row."""
    fields = _fields()
    columns = ", ".join(column for _, column in fields)
    table = Code._meta.db_table
    defaults = {
        field.attname: field.get_default() if field.has_default() else None
        for field, _ in fields
        if field.attname != "id"
    }
    json_fields = {field.attname for field, _ in fields if field.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_FULL_STAGE} (LIKE {table} INCLUDING DEFAULTS)"
        )
        cursor.execute(f"TRUNCATE {_FULL_STAGE}")
        with cursor.copy(f"COPY {_FULL_STAGE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = []
                for field, _ in fields:
                    name = field.attname
                    if name in row:
                        value = row[name]
                    else:
                        value = uuid7() if name == "id" else defaults[name]
                    if name in json_fields and value is not None:
                        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                    values.append(value)
                copy.write_row(values)
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_FULL_STAGE}")
