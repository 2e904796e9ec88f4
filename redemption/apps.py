from django.apps import AppConfig


class RedemptionConfig(AppConfig):
    name = "redemption"
    verbose_name = "Redemption codes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here because both need the models, which load after this module.
        from redemption import tasks
        from redemption.services import bulk

        bulk.job_enqueuer_set(tasks.enqueue_job)
