from django.apps import AppConfig


class RedemptionConfig(AppConfig):
    name = "redemption"
    verbose_name = "Redemption codes"
    default_auto_field = "django.db.models.BigAutoField"
