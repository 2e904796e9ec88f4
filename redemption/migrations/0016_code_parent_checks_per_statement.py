"""On PostgreSQL, check a code's code type and batch once per statement, not once per row.

The two foreign keys of redemption_code become the triggers of `redemption.db.parent_checks`
(same guarantee, same SQLSTATE; see there). SQLite keeps its foreign keys. Django's model
state keeps them too: on_delete still works in the ORM, and nothing else reads the database's
constraint.
"""

from django.db import migrations

_FIELDS = ("code_type", "batch")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from redemption.db.parent_checks import install_sql

    code = apps.get_model("redemption", "Code")
    for name in _FIELDS:
        column = code._meta.get_field(name).column
        for constraint in schema_editor._constraint_names(code, [column], foreign_key=True):
            schema_editor.execute(schema_editor._delete_fk_sql(code, constraint))
    for statement in install_sql():
        schema_editor.execute(statement)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from redemption.db.parent_checks import uninstall_sql

    for statement in uninstall_sql():
        schema_editor.execute(statement)
    code = apps.get_model("redemption", "Code")
    for name in _FIELDS:
        field = code._meta.get_field(name)
        schema_editor.execute(
            schema_editor._create_fk_sql(code, field, "_fk_%(to_table)s_%(to_column)s")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("redemption", "0015_s2s_sessions"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
