"""Credential services: server keys and user tokens, below the HTTP layer."""

import pytest
from django.conf import settings
from django.core import signing
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.models import AuditEvent, ServerKey
from redemption.services import keys

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def test_each_server_key_is_random_and_unique():
    secrets = {keys.server_key_create(actor=SYSTEM, name=f"k{i}")[1] for i in range(20)}
    assert len(secrets) == 20
    assert len({ServerKey.objects.values_list("prefix", flat=True)[i] for i in range(20)}) == 20


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, None])
def test_a_server_key_needs_a_name(name):
    with pytest.raises(exc.RedemptionError) as caught:
        keys.server_key_create(actor=SYSTEM, name=name)
    assert caught.value.details["fields"] == {"name": "1-100 characters"}


def test_a_superuser_creates_keys_on_their_own_name(admin_user):
    key, _ = keys.server_key_create(actor=Actor.staff(admin_user), name="portal made")
    assert key.created_by == admin_user
    assert AuditEvent.objects.get(action="server_key.create").actor_label == admin_user.username


def test_find_by_a_prefix_that_matches_several_keys_is_refused():
    keys.server_key_create(actor=SYSTEM, name="a")
    keys.server_key_create(actor=SYSTEM, name="b")
    with pytest.raises(exc.RedemptionError) as caught:
        keys.server_key_find("rk_")
    assert caught.value.details["fields"] == {"key": "matches more than one server key"}


def test_authenticate_refuses_revoked_and_unknown_secrets():
    key, secret = keys.server_key_create(actor=SYSTEM, name="a")
    assert keys.server_key_authenticate(secret).pk == key.pk
    keys.server_key_revoke(actor=SYSTEM, reference=str(key.pk))
    for candidate in [secret, secret[:-1] + "x", "", None]:
        with pytest.raises(exc.InvalidCredentialsError):
            keys.server_key_authenticate(candidate)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"profile_id": ""}, "profileId"),
        ({"profile_id": "x" * 129}, "profileId"),
        ({"profile_id": "p", "profile_name": "x" * 201}, "profileName"),
        ({"profile_id": "p", "ttl_seconds": 59}, "ttlSeconds"),
    ],
)
def test_mint_checks_its_input(kwargs, field):
    with pytest.raises(exc.RedemptionError) as caught:
        keys.user_token_mint(actor=SYSTEM, **kwargs)
    assert list(caught.value.details["fields"]) == [field]


def test_only_server_keys_and_the_system_mint_tokens(viewer):
    for actor in [viewer, Actor.profile("p-1")]:
        with pytest.raises(exc.PermissionDeniedError):
            keys.user_token_mint(actor=actor, profile_id="p-1")


def test_a_token_round_trips_its_profile_and_is_audited():
    minted = keys.user_token_mint(
        actor=SYSTEM, profile_id="p-1", profile_name="Ann", ttl_seconds=60
    )

    profile = keys.user_token_verify(minted.token)

    assert (profile.id, profile.name) == ("p-1", "Ann")
    assert 59 <= (minted.expires_at - timezone.now()).total_seconds() <= 60
    assert AuditEvent.objects.get(action="user_token.mint").profile_id == "p-1"


def test_a_value_signed_for_another_purpose_is_not_a_token():
    other = signing.dumps(
        {"p": "p-1", "n": None, "e": 9_999_999_999}, key=settings.USER_TOKEN_SIGNING_KEY
    )
    with pytest.raises(exc.InvalidCredentialsError):
        keys.user_token_verify(keys.USER_TOKEN_PREFIX + other)


def test_the_longest_profile_still_makes_a_token_that_works(api):
    token = keys.user_token_mint(actor=SYSTEM, profile_id="😀" * 128, profile_name="é" * 200).token

    response = api.as_(token).get("/api/v1/client/redeemed-codes")

    assert response.status == 200
    assert keys.user_token_verify(token).id == "😀" * 128
