from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from redemption import health, metrics_export
from redemption.api.dispatch import not_found as api_not_found
from redemption.braincloud.dispatcher import dispatcherv2
from redemption.braincloud.s2s import s2sdispatcher
from redemption.views import auth

# A database outage that escapes a view's middleware still answers 503, not 500.
handler500 = "redemption.middleware.server_error"

urlpatterns = [
    path("accounts/login/", auth.SignInView.as_view(), name="login"),
    path("accounts/login/code/", auth.sign_in_code, name="sign_in_code"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", auth.second_factor, name="second_factor"),
    path(
        "accounts/set-password/<uidb64>/<token>/",
        auth.PasswordSetView.as_view(),
        name="password_set",
    ),
    path(
        "accounts/set-password/done/", auth.PasswordSetDoneView.as_view(), name="password_set_done"
    ),
    path("accounts/password/", auth.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_export.metrics, name="metrics"),
    path("api/v1/", include("redemption.api.urls")),
    # brainCloud clients, unchanged, with only their server URL pointing here (SPEC §11).
    path("dispatcherv2", dispatcherv2, name="dispatcherv2"),
    path("s2sdispatcher", s2sdispatcher, name="s2sdispatcher"),
    # Any other /api/ path answers with the JSON error envelope, not the portal's HTML 404.
    re_path(r"^api/(?P<rest>(?s:.*))\Z", api_not_found),
    path("", include("redemption.urls")),
]
