"""The client IP behind trusted proxies, and the limits that count by it (redeem, sign-in)."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from redemption.client_ip import client_ip, client_ip_from

PEER = "10.0.0.1"  # the load balancer, as the app server sees it

CASES = [
    # (trusted proxies, X-Forwarded-For, REMOTE_ADDR, expected client)
    ("no proxy: the peer", 0, None, "198.51.100.7", "198.51.100.7"),
    ("no proxy: a spoofed header is ignored", 0, "6.6.6.6", "198.51.100.7", "198.51.100.7"),
    ("one proxy: its entry", 1, "203.0.113.5", PEER, "203.0.113.5"),
    (
        "one proxy: spoofed entries on the left",
        1,
        "6.6.6.6, 7.7.7.7, 203.0.113.5",
        PEER,
        "203.0.113.5",
    ),
    (
        "two proxies: second from the right",
        2,
        "6.6.6.6, 203.0.113.5, 10.1.1.1",
        PEER,
        "203.0.113.5",
    ),
    ("several headers joined by commas", 1, "6.6.6.6,203.0.113.5", PEER, "203.0.113.5"),
    ("spaces and empty entries", 1, " 6.6.6.6 ,, 203.0.113.5 ,", PEER, "203.0.113.5"),
    ("fewer hops than proxies: the peer", 2, "203.0.113.5", PEER, PEER),
    ("no header behind a proxy: the peer", 1, None, PEER, PEER),
    ("empty header: the peer", 1, "", PEER, PEER),
    ("garbage entry: the peer", 1, "6.6.6.6, not-an-ip", PEER, PEER),
    ("obfuscated entry: the peer", 1, "_hidden", PEER, PEER),
    ("port on an IPv4 entry", 1, "203.0.113.5:51234", PEER, "203.0.113.5"),
    ("IPv6 grouped per /64", 1, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", PEER, "2001:db8:1:2::/64"),
    ("bracketed IPv6 with a port", 1, "[2001:db8:1:2::9]:443", PEER, "2001:db8:1:2::/64"),
    ("IPv4-mapped IPv6 is the IPv4 client", 1, "::ffff:203.0.113.5", PEER, "203.0.113.5"),
    ("IPv6 peer grouped too", 0, None, "2001:db8:9:9::1", "2001:db8:9:9::/64"),
    ("IPv4 peer on a dual-stack socket", 0, None, "::ffff:198.51.100.7", "198.51.100.7"),
    ("no peer at all", 0, None, "", "unknown"),
]


@pytest.mark.parametrize(
    ("proxies", "forwarded", "peer", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_the_client_ip_is_the_nth_address_from_the_right(proxies, forwarded, peer, expected):
    meta = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded

    assert client_ip_from(meta, trusted_proxies=proxies) == expected


def test_client_ip_reads_the_setting(settings):
    request = RequestFactory().get("/", REMOTE_ADDR=PEER, HTTP_X_FORWARDED_FOR="203.0.113.5")

    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == PEER
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.5"


# --- the sign-in limit ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sign_in_limit_counts_the_client_behind_the_proxy(client, ops_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.STAFF_SIGN_IN_MAX_FAILED_PER_IP = 2
    url = reverse("login")

    def sign_in(forwarded: str, username: str, password: str = "nope") -> int:  # noqa: S107
        return client.post(
            url,
            {"username": username, "password": password},
            REMOTE_ADDR=PEER,
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    # Two failures from one client behind the proxy, each for another account...
    assert [sign_in("203.0.113.5", "someone"), sign_in("203.0.113.5", "anyone")] == [200, 200]
    # ...pause that client, whoever it signs in as; another client behind the same proxy is not.
    assert sign_in("203.0.113.5", ops_user.username, "pw-olive-ops-123!") == 429
    assert sign_in("198.51.100.8", ops_user.username, "pw-olive-ops-123!") == 302
