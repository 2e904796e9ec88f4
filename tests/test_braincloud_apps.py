"""brainCloud apps: the superuser portal page and `manage.py create_braincloud_app`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from redemption.models import AuditEvent, BraincloudApp, WireSession
from tests.braincloud_helpers import APP_ID, make_app, sign_in

PAGE = "/braincloud-apps/"


def _command(*argv: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_braincloud_app", *argv, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _printed(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines())


# --- the management command ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_creates_an_app_with_defaults_and_prints_its_id_and_secret():
    out, _ = _command("12345")

    printed = _printed(out)
    app = BraincloudApp.objects.get()
    assert printed == {"app id": "12345", "secret": app.secret}
    assert len(app.secret) >= 32
    assert (app.allow_anonymous, app.session_seconds, app.is_enabled) == (False, 1200, True)
    assert AuditEvent.objects.filter(action="braincloud_app.create", target_id="12345").count() == 1


@pytest.mark.django_db
def test_the_command_updates_only_the_options_given():
    _command("12345", "--secret", "given-secret-1", "--name", "Game", "--allow-anonymous")
    _command("12345", "--session-seconds", "600")

    app = BraincloudApp.objects.get()
    assert (app.secret, app.name, app.allow_anonymous, app.session_seconds) == (
        "given-secret-1",
        "Game",
        True,
        600,
    )

    _command("12345", "--no-allow-anonymous")
    app.refresh_from_db()
    assert app.allow_anonymous is False and app.name == "Game"


@pytest.mark.django_db
def test_the_command_rotates_the_secret_and_that_ends_the_sessions(client):
    make_app()
    sign_in(client)

    out, _ = _command(APP_ID, "--rotate-secret")

    app = BraincloudApp.objects.get()
    assert _printed(out)["secret"] == app.secret != "s3cret-app-secret"
    assert WireSession.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "argv",
    [
        ("bad id!",),
        ("x" * 65,),
        ("12345", "--secret", "short"),
        ("12345", "--session-seconds", "5"),
    ],
)
def test_the_command_refuses_bad_values_and_changes_nothing(argv):
    with pytest.raises(CommandError):
        _command(*argv)
    assert BraincloudApp.objects.count() == 0


@pytest.mark.django_db
def test_secret_and_rotate_secret_exclude_each_other():
    with pytest.raises(CommandError):
        _command("12345", "--secret", "given-secret-1", "--rotate-secret")


# --- the portal page ---------------------------------------------------------------------------


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    return client


def _csrf(client: Client, path: str) -> str:
    client.get(path)
    return client.cookies["csrftoken"].value


def test_only_superusers_see_the_page_and_its_navigation_link(admin_user, ops_user):
    admin = Client()
    admin.force_login(admin_user)
    ops = Client()
    ops.force_login(ops_user)

    assert admin.get(PAGE).status_code == 200
    assert f'href="{PAGE}"' in admin.get("/").content.decode()
    assert ops.get(PAGE).status_code == 403
    assert f'href="{PAGE}"' not in ops.get("/").content.decode()
    assert ops.post(PAGE, {"app_id": "x1", "session_seconds": 1200}).status_code == 403
    assert BraincloudApp.objects.count() == 0


def test_a_superuser_creates_an_app_with_its_brainCloud_secret(admin_client):
    token = _csrf(admin_client, PAGE)

    response = admin_client.post(
        PAGE,
        {
            "csrfmiddlewaretoken": token,
            "app_id": "12345",
            "name": "Space game",
            "secret": "brainCloud-secret-1",
            "allow_anonymous": "on",
            "session_seconds": "900",
        },
    )

    assert response.status_code == 302
    app = BraincloudApp.objects.get()
    assert (app.app_id, app.name, app.secret, app.allow_anonymous, app.session_seconds) == (
        "12345",
        "Space game",
        "brainCloud-secret-1",
        True,
        900,
    )
    detail = admin_client.get(response["Location"]).content.decode()
    assert "brainCloud-secret-1" in detail
    audit = AuditEvent.objects.get(action="braincloud_app.create")
    assert audit.actor_kind == "staff"
    assert "brainCloud-secret-1" not in str(audit.details)


def test_the_create_form_shows_errors_next_to_the_fields(admin_client):
    token = _csrf(admin_client, PAGE)

    response = admin_client.post(
        PAGE,
        {
            "csrfmiddlewaretoken": token,
            "app_id": "bad id",
            "secret": "x",
            "session_seconds": "1200",
        },
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "1-64 characters" in page and "8-128 printable ASCII" in page
    assert BraincloudApp.objects.count() == 0


def test_posts_without_the_csrf_token_are_refused(admin_client):
    make_app()
    assert admin_client.post(PAGE, {"app_id": "x2", "session_seconds": "1200"}).status_code == 403
    assert admin_client.post(f"{PAGE}{APP_ID}/rotate-secret/").status_code == 403
    assert BraincloudApp.objects.count() == 1


def test_a_superuser_rotates_disables_and_enables_an_app_and_each_is_audited(admin_client):
    make_app()
    sign_in(Client())
    detail = f"{PAGE}{APP_ID}/"
    token = _csrf(admin_client, detail)

    admin_client.post(f"{detail}rotate-secret/", {"csrfmiddlewaretoken": token})
    app = BraincloudApp.objects.get()
    assert app.secret != "s3cret-app-secret"
    assert WireSession.objects.count() == 0

    admin_client.post(f"{detail}toggle/", {"csrfmiddlewaretoken": token})
    app.refresh_from_db()
    assert app.is_enabled is False
    admin_client.post(f"{detail}toggle/", {"csrfmiddlewaretoken": token})
    app.refresh_from_db()
    assert app.is_enabled is True

    admin_client.post(
        detail,
        {
            "csrfmiddlewaretoken": token,
            "name": "Renamed",
            "session_seconds": "300",
            "enabled": "on",
        },
    )
    app.refresh_from_db()
    assert (app.name, app.session_seconds, app.allow_anonymous) == ("Renamed", 300, False)
    changes = list(
        AuditEvent.objects.filter(action="braincloud_app.update")
        .order_by("pk")
        .values_list("details", flat=True)
    )
    assert changes == [
        {"changed": ["secret"]},
        {"changed": ["is_enabled"]},
        {"changed": ["is_enabled"]},
        {"changed": ["name", "session_seconds"]},
    ]


def test_an_unknown_app_page_is_404(admin_client):
    assert admin_client.get(f"{PAGE}nope/").status_code == 404
