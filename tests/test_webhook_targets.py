"""Webhook targets (SSRF): refused at save time and at call time, before any connection.

No test here sends a packet to a non-loopback address. Refusals are proven with a connection
seam that fails the test if it is called at all; the public-address path uses a stub resolver
(a public-looking name → a public-looking address) and a connection seam that carries that
address to a receiver on 127.0.0.1, so the rule stays on for the name under test.
"""

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trustme
from django.urls import reverse

from redemption import exceptions as exc
from redemption import fulfillment, webhook_targets
from redemption.models import Code, CodeType, State
from redemption.services import code_type_create, code_type_update, redeem
from tests.fulfilment import ANN, DONE, SYSTEM, TX, add_code, attempts_of, make_type
from tests.webhook import WebhookServer

PUBLIC_NAME = "hooks.example.com"
PUBLIC_ADDRESS = "93.184.216.34"  # looks public to the rule; never contacted (see `network`)

# Every class of address a webhook must not reach, written as URL hosts.
REFUSED_HOSTS = {
    "loopback": "127.0.0.1:6379",
    "loopback-range": "127.8.9.10",
    "short-form": "127.1",
    "hex": "0x7f000001",
    "octal": "0177.0.0.1",
    "decimal": "2130706433",
    "leading-zero": "127.0.0.01",
    "trailing-dot": "127.0.0.1.",
    "ipv6-loopback": "[::1]:5432",
    "ipv4-mapped": "[::ffff:127.0.0.1]",
    "ipv4-mapped-hex": "[::ffff:7f00:1]",
    "ipv4-mapped-metadata": "[::ffff:169.254.169.254]",
    "ipv4-compatible": "[::127.0.0.1]",
    "nat64-metadata": "[64:ff9b::a9fe:a9fe]",
    "6to4-private": "[2002:a00:1::1]",
    "private-10": "10.1.2.3",
    "private-172": "172.16.5.4",
    "private-192": "192.168.0.10",
    "metadata": "169.254.169.254",
    "link-local-v6": "[fe80::1]",
    "cgnat": "100.64.0.1",
    "unique-local-fd": "[fd00::1]",
    "unique-local-fc": "[fc00::5]",
    "multicast": "224.0.0.251",
    "multicast-v6": "[ff02::1]",
    "unspecified": "0.0.0.0",  # noqa: S104 - refused, never bound
    "unspecified-v6": "[::]",
    "broadcast": "255.255.255.255",
    "reserved": "240.0.0.1",
    "benchmarking": "198.18.0.1",
    "this-network": "0.1.2.3",
}

# Names whose (stubbed) answers include at least one address that must not be reached.
REFUSED_NAMES = {
    "internal.example.com": ["10.0.0.5"],
    "one-bad-answer.example.com": [PUBLIC_ADDRESS, "10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
    "v6-unique-local.example.com": ["fd00:ec2::254"],
    "v6-mapped.example.com": ["::ffff:192.168.1.1"],
    "cgnat.example.com": ["100.100.100.100"],
    "loopback.example.com": ["127.0.0.1", "::1"],
}


@dataclass
class Network:
    """The stub resolver's answers and what the connection seam was asked for."""

    answers: dict[str, list[str] | Callable[[], list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    connected: list[tuple[str, int]] = field(default_factory=list)
    routes: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)


@pytest.fixture
def rule_on(settings):
    """The address rule in force, as in production; http stays allowed unless a test says."""
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = False
    settings.FULFILLMENT_ALLOW_HTTP = True


@pytest.fixture
def network(monkeypatch) -> Iterator[Network]:
    """A stub resolver, and a connection seam that only follows routes a test set up.

    A connection to an address with no route fails the test: nothing may reach the network.
    """
    net = Network()

    def resolve(host: str, port: int) -> list[str]:
        net.asked.append(host)
        answer = net.answers.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answer() if callable(answer) else answer)

    def open_connection(address: tuple[str, int], timeout: float | None = None) -> socket.socket:
        net.connected.append(address)
        route = net.routes.get(address)
        if route is None:
            pytest.fail(f"the webhook tried to connect to {address}")
        return socket.create_connection(route, timeout)

    monkeypatch.setattr(webhook_targets, "resolve", resolve)
    monkeypatch.setattr(fulfillment, "open_connection", open_connection)
    yield net


def _fulfillment(url: str, timeout: int = 10) -> dict:
    return {"url": url, "async": False, "maxRetries": 0, "timeoutSeconds": timeout}


def _create(url: str, name: str = "hooked") -> CodeType:
    return code_type_create(actor=SYSTEM, name=name, fulfillment=_fulfillment(url))


def _call(url: str) -> fulfillment.Reply:
    return fulfillment.call(url=url, secret="whsec_x", payload={"a": 1}, timeout_seconds=2)


# --- refused at save time ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("host", list(REFUSED_HOSTS.values()), ids=list(REFUSED_HOSTS))
def test_a_url_whose_host_is_a_non_public_address_cannot_be_saved(host, rule_on, network):
    url = f"http://{host}/hook"
    # IPv6 literals are outside the documented URL shape (host names and dotted IPv4), so the
    # field check refuses them first; the target rule below refuses them as well.
    refused = (
        exc.InvalidParameterError if host.startswith("[") else exc.FulfillmentUrlForbiddenError
    )

    with pytest.raises(refused) as caught:
        _create(url)

    assert caught.value.http_status == 400
    assert "fulfillment.url" in caught.value.details["fields"]
    # The call-time check refuses it too, whatever let the URL in (say, one stored earlier).
    with pytest.raises(webhook_targets.TargetRefused):
        webhook_targets.check_url(url)
    assert network.asked == []  # an address needs no lookup
    assert not CodeType.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(REFUSED_NAMES))
def test_a_url_whose_name_resolves_to_any_non_public_address_cannot_be_saved(
    name, rule_on, network
):
    network.answers[name] = REFUSED_NAMES[name]

    with pytest.raises(exc.FulfillmentUrlForbiddenError) as caught:
        _create(f"https://{name}/hook")

    assert "resolves to" in caught.value.details["fields"]["fulfillment.url"]
    assert network.asked == [name]


@pytest.mark.django_db
def test_localhost_through_the_real_resolver_cannot_be_saved(rule_on):
    with pytest.raises(exc.FulfillmentUrlForbiddenError) as caught:
        _create("http://localhost:6379/")

    assert "loopback" in caught.value.details["fields"]["fulfillment.url"]


@pytest.mark.django_db
def test_a_name_that_does_not_resolve_cannot_be_saved(rule_on, network):
    with pytest.raises(exc.FulfillmentUrlForbiddenError) as caught:
        _create("https://nowhere.example.com/hook")

    assert "does not resolve" in caught.value.details["fields"]["fulfillment.url"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/hook", "http or https URL"),
        ("https://user:pw@hooks.example.com/hook", "user name or password"),
        ("https://bücher.example.com/hook", "ASCII"),
        ("https://hooks.example.com:99999/hook", "not a valid URL"),
    ],
)
def test_urls_of_the_wrong_shape_cannot_be_saved(url, why, rule_on, network):
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]

    with pytest.raises((exc.FulfillmentUrlForbiddenError, exc.InvalidParameterError)) as caught:
        _create(url)

    assert caught.value.http_status == 400
    assert "fulfillment.url" in caught.value.details["fields"]
    with pytest.raises(webhook_targets.TargetRefused) as refused:
        webhook_targets.check_url(url)
    assert why in str(refused.value)


@pytest.mark.django_db
def test_plain_http_is_refused_in_production_unless_allowed(settings, network):
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = False
    settings.DEBUG = False
    settings.FULFILLMENT_ALLOW_HTTP = False
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]

    with pytest.raises(exc.FulfillmentUrlForbiddenError) as caught:
        _create(f"http://{PUBLIC_NAME}/hook")
    assert "https" in caught.value.details["fields"]["fulfillment.url"]
    assert _create(f"https://{PUBLIC_NAME}/hook", name="secure").has_fulfillment

    settings.FULFILLMENT_ALLOW_HTTP = True
    assert _create(f"http://{PUBLIC_NAME}/hook", name="allowed").has_fulfillment
    settings.FULFILLMENT_ALLOW_HTTP = False
    settings.DEBUG = True
    assert _create(f"http://{PUBLIC_NAME}/hook", name="debug").has_fulfillment


@pytest.mark.django_db
def test_allowing_private_networks_lifts_the_address_rule_only(settings, network):
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = True
    settings.FULFILLMENT_ALLOW_HTTP = True

    assert _create("http://127.0.0.1:8000/hook").fulfillment_url.startswith("http://127.0.0.1")
    with pytest.raises(exc.FulfillmentUrlForbiddenError):
        _create("http://0x7f000001/hook", name="numeric")  # a non-standard number, still
    assert network.asked == []


@pytest.mark.django_db
def test_an_update_to_a_forbidden_url_is_refused_and_changes_nothing(rule_on, network):
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    ct = _create(f"https://{PUBLIC_NAME}/hook")

    with pytest.raises(exc.FulfillmentUrlForbiddenError):
        code_type_update(
            actor=SYSTEM, name=ct.name, fulfillment=_fulfillment("http://169.254.169.254/")
        )

    ct.refresh_from_db()
    assert ct.fulfillment_url == f"https://{PUBLIC_NAME}/hook"


# --- refused at call time, before connecting --------------------------------------------------


@pytest.mark.parametrize("host", list(REFUSED_HOSTS.values()), ids=list(REFUSED_HOSTS))
def test_a_call_to_a_non_public_address_is_refused_before_connecting(host, rule_on, network):
    reply = _call(f"http://{host}/hook")

    assert reply.is_transport_failure
    assert reply.transport_error.startswith("refused: the fulfilment URL is not allowed")
    assert network.connected == []


@pytest.mark.parametrize("name", list(REFUSED_NAMES))
def test_a_call_to_a_name_with_a_non_public_answer_is_refused_before_connecting(
    name, rule_on, network
):
    network.answers[name] = REFUSED_NAMES[name]

    reply = _call(f"http://{name}/hook")

    assert "refused" in reply.transport_error and "resolves to" in reply.transport_error
    assert network.connected == []


@TX
def test_a_stored_url_that_became_forbidden_fails_the_redeem_without_any_traffic(
    rule_on, network, webhook
):
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    ct = make_type(f"http://{PUBLIC_NAME}/hook")
    # Saved before the rule existed (or behind its back): a loopback receiver.
    CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=webhook.url)
    code = add_code(ct)

    with pytest.raises(exc.ScriptFailureError) as caught:
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert caught.value.details == {"attempt": 1}
    assert "127.0.0.1" not in caught.value.message
    [attempt] = attempts_of(code)
    assert "loopback" in attempt.error_msg
    assert network.connected == [] and webhook.calls == 0
    assert Code.objects.get(pk=code.pk).state == State.FAILED


@TX
def test_dns_rebinding_after_the_save_is_caught_at_call_time(rule_on, network, webhook):
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    code = add_code(make_type(f"http://{PUBLIC_NAME}/hook"))
    network.answers[PUBLIC_NAME] = ["127.0.0.1"]

    with pytest.raises(exc.ScriptFailureError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert "resolves to a loopback address" in attempts_of(code)[0].error_msg
    assert network.connected == [] and webhook.calls == 0


# --- the public path --------------------------------------------------------------------------


@TX
def test_a_public_name_is_called_at_exactly_the_checked_address_with_its_host_header(
    rule_on, network, webhook
):
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    network.routes[(PUBLIC_ADDRESS, 80)] = ("127.0.0.1", webhook.port)
    code = add_code(make_type(f"http://{PUBLIC_NAME}/hook?x=1"))
    network.asked.clear()
    answers = iter([[PUBLIC_ADDRESS]])
    # A rebinding resolver: whatever is asked after the call's one lookup answers loopback.
    network.answers[PUBLIC_NAME] = lambda: next(answers, ["127.0.0.1"])

    result = redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert result.record.state == State.REDEEMED
    assert network.asked == [PUBLIC_NAME]
    assert network.connected == [(PUBLIC_ADDRESS, 80)]
    [seen] = webhook.seen
    assert seen.headers["Host"] == PUBLIC_NAME
    assert seen.path == "/hook?x=1"


@TX
def test_the_dns_lookup_counts_against_the_calls_timeout(rule_on, network, webhook):
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    code = add_code(make_type(f"http://{PUBLIC_NAME}/hook", timeout=1))

    def slow() -> list[str]:
        time.sleep(3)
        return [PUBLIC_ADDRESS]

    network.answers[PUBLIC_NAME] = slow
    started = time.monotonic()
    with pytest.raises(exc.ScriptFailureError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert time.monotonic() - started < 2
    assert "DNS lookup" in attempts_of(code)[0].error_msg
    assert network.connected == []


@pytest.fixture
def tls_receiver(monkeypatch) -> Iterator[Callable[[str], tuple[WebhookServer, list[str]]]]:
    """An https receiver on 127.0.0.1 whose certificate names a host; the call trusts its CA."""
    ca = trustme.CA()
    servers: list[WebhookServer] = []

    def client_context() -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    def start(cert_host: str) -> tuple[WebhookServer, list[str]]:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(cert_host).configure_cert(server_context)
        sni: list[str] = []

        def note_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            sni.append(name or "")

        server_context.sni_callback = note_sni
        server = WebhookServer(tls=server_context).start()
        servers.append(server)
        return server, sni

    monkeypatch.setattr(fulfillment, "tls_context", client_context)
    yield start
    for server in servers:
        server.stop()


@TX
def test_https_uses_the_host_name_for_sni_and_the_certificate_while_pinned_to_the_address(
    settings, network, tls_receiver
):
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = False
    settings.FULFILLMENT_ALLOW_HTTP = False
    server, sni = tls_receiver(PUBLIC_NAME)
    server.behaviour = lambda _r: (200, DONE)
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    network.routes[(PUBLIC_ADDRESS, 443)] = ("127.0.0.1", server.port)
    code = add_code(make_type(f"https://{PUBLIC_NAME}/hook"))

    result = redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert result.record.state == State.REDEEMED
    assert sni == [PUBLIC_NAME]
    assert server.seen[0].headers["Host"] == PUBLIC_NAME
    assert network.connected == [(PUBLIC_ADDRESS, 443)]


@TX
def test_https_refuses_a_certificate_for_another_name(settings, network, tls_receiver):
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = False
    server, _ = tls_receiver("elsewhere.example.net")
    network.answers[PUBLIC_NAME] = [PUBLIC_ADDRESS]
    network.routes[(PUBLIC_ADDRESS, 443)] = ("127.0.0.1", server.port)
    code = add_code(make_type(f"https://{PUBLIC_NAME}/hook"))

    with pytest.raises(exc.ScriptFailureError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert "CERTIFICATE_VERIFY_FAILED" in attempts_of(code)[0].error_msg
    assert server.calls == 0


# --- pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [PUBLIC_ADDRESS, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_and_their_ipv6_forms_are_allowed(address):
    assert webhook_targets.refusal(address) is None


# --- the portal form --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_portal_shows_the_refusal_under_the_url_field(client, ops_user, rule_on):
    client.force_login(ops_user)

    response = client.post(
        reverse("redemption:code_type_create"),
        {
            "name": "metadata-grab",
            "use_type": "SINGLE",
            "fulfillment_url": "http://169.254.169.254/latest/meta-data/",
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
        },
    )

    assert response.status_code == 200
    [error] = response.context["form"].errors["fulfillment_url"]
    assert "link-local" in error
    assert not CodeType.objects.filter(name="metadata-grab").exists()
