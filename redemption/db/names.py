"""Quoted table and column names, taken from the models' metadata (never written by hand)."""

from typing import Any

from django.db import connection
from django.db.models import Field, Model


def table(model: type[Model]) -> str:
    """The model's table name, quoted for the current database."""
    return connection.ops.quote_name(model._meta.db_table)


def field(model: type[Model], name: str) -> Field[Any, Any]:
    """The concrete field `name` of `model` (the primary key for "pk")."""
    found = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(found, Field) or not found.concrete:
        raise LookupError(f"{model.__name__}.{name} is not a column")
    return found


def column(model: type[Model], name: str) -> str:
    """The column of field `name` of `model` ("pk" for the primary key), quoted."""
    return connection.ops.quote_name(field(model, name).column or "")
