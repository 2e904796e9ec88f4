from django.apps import AppConfig


class RedemptionConfig(AppConfig):
    name = "redemption"
    verbose_name = "Redemption codes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here because both need the models, which load after this module.
        from django.contrib.auth.signals import user_logged_in

        from redemption import middleware, tasks
        from redemption.services import bulk

        bulk.job_enqueuer_set(tasks.enqueue_job)
        user_logged_in.connect(middleware.session_renewed_at_sign_in, dispatch_uid="renewed")
