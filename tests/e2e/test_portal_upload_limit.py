"""A file over the import limit is refused in the browser before it is sent."""

import pytest
from playwright.sync_api import expect

from redemption.models import Job
from tests.e2e.helpers import role_groups, sign_in
from tests.factories import CodeTypeFactory

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_file_over_the_limit_is_refused_before_upload(page, live_server, ops_user, settings):
    settings.IMPORT_MAX_BODY_BYTES = 2048
    ct = CodeTypeFactory(name="upload-limit")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.method))
    sign_in(page, live_server.url, ops_user)
    page.goto(f"{live_server.url}/design/redemption-codes/{ct.name}/import/")
    expect(page.get_by_text("Up to 2,048 bytes.")).to_be_visible()
    requests.clear()

    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "codes.csv", "mimeType": "text/csv", "buffer": b"GOOD-0001\n" * 300}]
    )
    page.get_by_role("button", name="Upload and import").click()

    expect(page.get_by_role("alert")).to_have_text(
        "The file is larger than 2,048 bytes, the most an import takes."
    )
    assert "POST" not in requests
    assert not Job.objects.exists()

    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "codes.csv", "mimeType": "text/csv", "buffer": b"GOOD-0001\n"}]
    )
    page.get_by_role("button", name="Upload and import").click()
    expect(page.get_by_test_id("job-status")).to_be_visible()
    assert Job.objects.filter(kind="import").count() == 1
