"""Cache-Control: no-store on every answer of the API, errors included."""

import pytest

from tests.api.conftest import mint

pytestmark = pytest.mark.django_db


def test_api_answers_of_every_kind_are_no_store(api, server_secret):
    token = mint()
    answers = [
        api.get("/api/v1/openapi.json"),
        api.get("/api/v1/server/code-types"),  # 401
        api.as_(server_secret).get("/api/v1/server/code-types"),
        api.as_(server_secret).post("/api/v1/server/user-tokens", {"profileId": "p-1"}),
        api.as_(token).post("/api/v1/client/redeem", {"scanCode": "MISSING-0001"}),  # 404
        api.as_(token).get("/api/v1/client/redeemed-codes"),
        api.get("/api/v1/no/such/path"),
    ]

    for response in answers:
        assert response["Cache-Control"] == "no-store", response.status
