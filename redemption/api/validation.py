"""Strict request input: JSON parsing and field specs that also feed the OpenAPI document."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import QueryDict

from redemption import exceptions as exc
from redemption import rules

BODY = "body"  # the name used in details.fields for problems with the body as a whole


_QUERY_INTEGER = re.compile(r"-?[0-9]{1,18}")
_TIMESTAMP_RE = re.compile(rules.TIMESTAMP_REGEX)
_TIMESTAMP_PATTERN = rules.whole(rules.TIMESTAMP_REGEX)
JSON_OBJECT_REF = "#/components/schemas/JsonObject"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


_QUERY_BOOLEANS = {"true": True, "false": False}


class FieldError(ValueError):
    """One field's value is unacceptable; the message says what is expected."""


@dataclass(frozen=True)
class Field:
    """One input field: how to check it and how to describe it in the OpenAPI document."""

    name: str
    kind: str  # string | integer | boolean | object | datetime | enum
    required: bool = False
    nullable: bool = False
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    rule: str = ""  # what `pattern` asks for, in words, for the error message
    description: str = ""
    default: Any = None
    inner: tuple["Field", ...] = ()  # a nested object with exactly these keys, checked here
    inner_doc: tuple["Field", ...] = ()  # a nested object documented here, checked by a service
    # Rules a service checks (so the error stays the service's), stated in the document too.
    documented: Mapping[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema (2020-12, as OpenAPI 3.1 uses it) of this field."""
        s: dict[str, Any]
        if self.kind == "string":
            s = {"type": "string"}
            if self.min is not None:
                s["minLength"] = self.min
            if self.max is not None:
                s["maxLength"] = self.max
            # Without a pattern of its own, any text but NUL (which the body check refuses).
            s["pattern"] = self.pattern or rules.whole(rules.TEXT_REGEX)
        elif self.kind == "integer":
            s = {"type": "integer", "minimum": self.min, "maximum": self.max}
        elif self.kind == "boolean":
            s = {"type": "boolean"}
        elif self.kind == "datetime":
            s = {"type": "string", "format": "date-time", "pattern": _TIMESTAMP_PATTERN}
        elif self.kind == "enum":
            s = {"type": "string", "enum": list(self.choices)}
        elif self.inner or self.inner_doc:
            s = object_schema(self.inner or self.inner_doc)
        else:
            s = {"$ref": JSON_OBJECT_REF}
        s.update(self.documented or {})
        if self.nullable:
            if "enum" in s:
                s["enum"] = [*s["enum"], None]
            if "type" in s:
                s["type"] = [*_as_list(s["type"]), "null"]
            else:
                s = {"anyOf": [s, {"type": "null"}]}
        if self.description:
            s["description"] = self.description
        if self.default is not None:
            s["default"] = self.default
        return s

    def from_query(self, text: str) -> Any:
        """The value a query string's text stands for: whole numbers and true/false are read
        as such (digits only, no sign or spaces beyond a leading minus); other kinds stay text."""
        if self.kind == "integer":
            if not _QUERY_INTEGER.fullmatch(text):
                raise FieldError("must be a whole number")
            return int(text)
        if self.kind == "boolean":
            if text not in _QUERY_BOOLEANS:
                raise FieldError("must be true or false")
            return _QUERY_BOOLEANS[text]
        return text

    def clean(self, value: Any, path: str) -> Any:
        """Return the checked value; raise FieldError, or invalid_fields for nested objects."""
        if value is None:
            if self.nullable:
                return None
            raise FieldError("must not be null")
        kind = self.kind
        if kind in {"string", "enum", "datetime"} and not isinstance(value, str):
            raise FieldError("must be a string")
        if kind == "string":
            if self.min is not None and len(value) < self.min:
                raise FieldError(f"must be at least {self.min} characters")
            if self.max is not None and len(value) > self.max:
                raise FieldError(f"must be at most {self.max} characters")
            if self.pattern and not re.fullmatch(self.pattern, value):
                raise FieldError(self.rule or f"must match {self.pattern}")
            return value
        if kind == "enum":
            if value not in self.choices:
                raise FieldError(f"must be one of {', '.join(self.choices)}")
            return value
        if kind == "datetime":
            return parse_datetime(value)
        if kind == "integer":
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # JSON Schema: 5.0 is the integer 5
            if isinstance(value, bool) or not isinstance(value, int):
                raise FieldError("must be a whole number")
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise FieldError(f"must be from {self.min} to {self.max}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise FieldError("must be true or false")
            return value
        if not isinstance(value, dict):
            raise FieldError("must be a JSON object")
        if self.inner:
            return clean_object(self.inner, value, prefix=f"{path}.")
        return value


def parse_datetime(value: str) -> datetime:
    """Read an RFC 3339 timestamp with an offset (or Z) into an aware UTC datetime."""
    if not _TIMESTAMP_RE.fullmatch(value):
        raise FieldError(f"must be {rules.TIMESTAMP_RULE}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # a day the month does not have
        raise FieldError(f"must be {rules.TIMESTAMP_RULE}, on a day that exists") from None
    return parsed.astimezone(UTC)


def object_schema(fields: Sequence[Field]) -> dict[str, Any]:
    """A closed object schema with these fields."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: f.schema() for f in fields},
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def clean_object(
    fields: Sequence[Field],
    data: Mapping[str, Any],
    *,
    prefix: str = "",
    fixed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check every field; return the present ones; raise one error naming every bad field."""
    by_name = {f.name: f for f in fields}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key in data:
        if key not in by_name:
            errors[prefix + key] = (fixed or {}).get(key, "unknown field")
    for name, f in by_name.items():
        if name not in data:
            if f.required:
                errors[prefix + name] = "is required"
            continue
        try:
            cleaned[name] = f.clean(data[name], prefix + name)
        except FieldError as err:
            errors[prefix + name] = str(err)
        except exc.RedemptionError as err:  # a nested object's own field errors
            errors.update(err.details.get("fields", {}))
    if errors:
        raise exc.invalid_fields(errors)
    return cleaned


def clean_query(fields: Sequence[Field], query: QueryDict) -> dict[str, Any]:
    """Check query parameters: known names only, each given once."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    for key, values in query.lists():
        if len(values) != 1:
            errors[key] = "may be given only once"
        else:
            data[key] = values[0]
    by_name = {f.name: f for f in fields}
    for key, value in data.items():
        if not text_ok(key) or not text_ok(value):
            errors[key if text_ok(key) else BODY] = rules.STORABLE_TEXT_RULE
        elif key in by_name:
            try:
                data[key] = by_name[key].from_query(value)
            except FieldError as err:
                errors[key] = str(err)
    if errors:
        raise exc.invalid_fields(errors)
    return clean_object(fields, data)


def text_ok(value: str) -> bool:
    """True when a string can be stored by every supported database."""
    return rules.is_storable_text(value)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object of values every database can store."""
    if not raw:
        raise exc.invalid_fields({BODY: "a JSON object is required"})
    try:
        data = rules.json_loads_strict(raw)
    except ValueError as err:
        raise exc.invalid_fields({BODY: f"malformed JSON: {err}"}) from None
    if not isinstance(data, dict):
        raise exc.invalid_fields({BODY: "must be a JSON object"})
    errors: dict[str, str] = {}
    for key, value in data.items():
        if not text_ok(key):
            errors[BODY] = "keys " + rules.STORABLE_TEXT_RULE
            continue
        problem = rules.json_value_problem(value, 1)
        if problem:
            errors[key] = problem
    if errors:
        raise exc.invalid_fields(errors)
    return data
