"""Server keys gain scopes and an expiry (existing keys keep every scope); code types keep a
rotated-out webhook secret for its grace period."""

from django.db import migrations, models

# The scopes as they were when this migration was written (frozen: not read from rules.py).
ALL_SCOPES = [
    "redeem",
    "user-tokens",
    "codes:read",
    "codes:write",
    "code-types:write",
    "jobs",
    "fulfilment",
    "wire-s2s",
]


def grant_all_scopes(apps, schema_editor):
    apps.get_model("redemption", "ServerKey").objects.update(scopes=ALL_SCOPES)


class Migration(migrations.Migration):
    dependencies = [
        ("redemption", "0007_job_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="codetype",
            name="previous_secret_valid_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="codetype",
            name="previous_webhook_secret",
            field=models.CharField(blank=True, default="", max_length=128),
        ),
        migrations.AddField(
            model_name="serverkey",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="serverkey",
            name="scopes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(grant_all_scopes, migrations.RunPython.noop),
    ]
