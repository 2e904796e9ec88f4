from django.apps import AppConfig


class RedemptionConfig(AppConfig):
    name = "redemption"
    verbose_name = "Redemption codes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here because both need the models, which load after this module.
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from redemption import middleware, tasks
        from redemption.db import redeem_at_once
        from redemption.services import bulk

        bulk.job_enqueuer_set(tasks.enqueue_job)
        user_logged_in.connect(middleware.session_renewed_at_sign_in, dispatch_uid="renewed")
        # The one-statement redeem's function follows the models: (re)made after every migrate.
        post_migrate.connect(redeem_at_once.after_migrate, sender=self, dispatch_uid="redeem-fn")
