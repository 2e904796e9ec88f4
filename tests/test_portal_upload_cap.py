"""The portal's import upload has the API's size limit: a clear form error, nothing kept."""

import io
import tempfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from redemption.models import Job
from tests.factories import CodeTypeFactory

pytestmark = pytest.mark.django_db


def _upload(content: bytes) -> io.BytesIO:
    upload = io.BytesIO(content)
    upload.name = "codes.csv"
    return upload


def _stored_imports() -> list[str]:
    return default_storage.listdir("imports")[1] if default_storage.exists("imports") else []


def test_an_upload_over_the_limit_is_a_form_error_and_is_not_kept(client, ops_user, settings):
    settings.IMPORT_MAX_BODY_BYTES = 4096
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # the upload goes to a temporary file
    settings.FILE_UPLOAD_TEMP_DIR = temp_dir = tempfile.mkdtemp()
    ct = CodeTypeFactory()
    client.force_login(ops_user)
    before = _stored_imports()

    response = client.post(
        reverse("redemption:code_import", args=[ct.name]),
        {"file": _upload(b"GOOD-0001-AAAA\n" * 1000)},  # 15,000 bytes
    )

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "The file is larger than 4,096 bytes, the most an import takes."
    ]
    assert not Job.objects.exists()
    assert _stored_imports() == before
    assert list(Path(temp_dir).iterdir()) == []  # the partial temporary file is gone


def test_an_upload_within_the_limit_still_imports(client, ops_user, settings):
    settings.IMPORT_MAX_BODY_BYTES = 4096
    ct = CodeTypeFactory()
    client.force_login(ops_user)

    response = client.post(
        reverse("redemption:code_import", args=[ct.name]), {"file": _upload(b"GOOD-0001-AAAA\n")}
    )

    job = Job.objects.get()
    assert response["Location"] == reverse("redemption:job_detail", args=[job.pk])


def test_the_form_states_the_limit(client, ops_user):
    ct = CodeTypeFactory()
    client.force_login(ops_user)

    page = client.get(reverse("redemption:code_import", args=[ct.name])).content.decode()

    assert "Up to 200 MiB." in page
    assert 'data-max-bytes="209715200"' in page


def test_the_upload_still_needs_a_csrf_token(ops_user):
    ct = CodeTypeFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops_user)

    response = client.post(
        reverse("redemption:code_import", args=[ct.name]), {"file": _upload(b"GOOD-0001\n")}
    )

    assert response.status_code == 403
    assert not Job.objects.exists()
