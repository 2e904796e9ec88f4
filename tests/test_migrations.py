"""Data migrations, run for real: back to the state before one, some rows, then forward."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import AddField
from django.utils import timezone

from redemption import rules
from redemption.models import ServerKey

APP = "redemption"


def _migration_adding(model: str, field: str) -> tuple[str, str]:
    """The migration that adds `model.field` (found by what it does, not by its number)."""
    graph = MigrationExecutor(connection).loader.graph
    for key in graph.forwards_plan(graph.leaf_nodes(APP)[0]):
        for op in graph.nodes[key].operations:
            if isinstance(op, AddField) and (op.model_name, op.name) == (model, field):
                return key
    raise LookupError(f"no migration adds {model}.{field}")


@pytest.mark.django_db(transaction=True)
def test_server_keys_made_before_scopes_existed_keep_every_scope():
    target = _migration_adding("serverkey", "scopes")
    executor = MigrationExecutor(connection)
    [before] = executor.loader.graph.nodes[target].dependencies
    leaf = executor.loader.graph.leaf_nodes(APP)
    try:
        executor.migrate([before])
        old_apps = executor.loader.project_state([before]).apps
        now = timezone.now()
        old_apps.get_model(APP, "ServerKey").objects.create(
            name="legacy", prefix="rk_legacy0", key_hash="a" * 64, created_at=now
        )

        executor = MigrationExecutor(connection)
        executor.migrate(leaf)
    finally:
        MigrationExecutor(connection).migrate(leaf)

    key = ServerKey.objects.get(name="legacy")
    assert key.scopes == list(rules.SERVER_KEY_SCOPES)
    assert key.expires_at is None
