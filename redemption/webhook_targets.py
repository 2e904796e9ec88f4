"""Where a fulfilment webhook may point: the rules for its URL and for the addresses it reaches.

A webhook URL is chosen by Ops staff or by a backend holding a server key, and the portal then
connects to it from inside its own network. So the URL must be http(s) (https only in
production unless FULFILLMENT_ALLOW_HTTP) and its host must resolve to public addresses only:
loopback, private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
unique-local, multicast, unspecified and reserved addresses are refused, and so is every IPv6
form that embeds such an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).
Numeric hosts must be written the standard way: `127.1`, `0x7f000001`, `0177.0.0.1` or
`2130706433` are refused outright rather than left to a resolver's reading of them.

The rules run when a URL is saved (`check_url`) and again on every call (`target`), whose
caller then connects to exactly the addresses checked, so DNS cannot swap them in between.
FULFILLMENT_ALLOW_PRIVATE_NETWORKS lifts the address rule (development and tests only).

`resolve` is the one place that asks DNS. It is the seam tests replace with a stub resolver,
so that no test ever depends on DNS or sends traffic to a public address.
"""

import ipaddress
import re
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# How long the save-time check waits for DNS (the call-time check uses the call's own budget).
SAVE_LOOKUP_SECONDS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix; local ones are private
# The last label of a host that a URL parser reads as an IPv4 number (WHATWG "ends in a number").
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


class TargetRefused(Exception):
    """The URL may not be called; the message says why (for staff, never for end users)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the addresses a call may connect to."""

    scheme: str
    host: str  # as the URL names it: the Host header, TLS SNI and certificate check use it
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # every address checked, in the resolver's order


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order (tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url(url: str) -> None:
    """Raise TargetRefused unless a webhook may be saved with this URL."""
    parsed = _parse(url)
    if not _private_networks_allowed():
        _addresses(parsed, SAVE_LOOKUP_SECONDS)


def target(url: str, *, seconds: float) -> Target:
    """Parse, resolve (within `seconds`) and check a URL just before calling it."""
    parsed = _parse(url)
    return Target(
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        path=parsed.path,
        addresses=_addresses(parsed, seconds),
    )


def refusal(address: str) -> str | None:
    """Why a webhook may not connect to this IP address, or None when it is public."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (link-local) IPv6 address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            why = _refusal(embedded)
            if why:
                return f"an IPv6 form of a {why} address ({embedded})"
            if ip not in _IPV4_COMPATIBLE:  # that form is deprecated: judged as IPv6 below
                return None
    why = _refusal(ip)
    return f"a {why} address" if why else None


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    scheme: str
    host: str
    port: int
    path: str
    literal: IPAddress | None


def _parse(url: str) -> _Parsed:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:  # e.g. a port out of range, an unbalanced bracket
        raise TargetRefused(f"it is not a valid URL ({err})") from None
    if parts.scheme not in {"http", "https"}:
        raise TargetRefused("it must be an http or https URL")
    if parts.scheme == "http" and not _http_allowed():
        raise TargetRefused("it must use https")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("it must not carry a user name or password")
    host = parts.hostname or ""
    if not host:
        raise TargetRefused("it must name a host")
    if not host.isascii():
        raise TargetRefused("its host must be ASCII (write an international name in punycode)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return _Parsed(parts.scheme, host, port or default_port, path, _literal(host))


def _literal(host: str) -> IPAddress | None:
    """The IP address a numeric host stands for; refuse numeric hosts in non-standard forms."""
    if ":" in host:  # urlsplit took the brackets off an IPv6 literal
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise TargetRefused("its host is not a valid IPv6 address") from None
    if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        try:
            return ipaddress.IPv4Address(host)
        except ValueError:
            raise TargetRefused(
                "its host is a number that is not a dotted-decimal IPv4 address "
                "(forms such as 127.1, 0x7f000001 or 0177.0.0.1 are refused)"
            ) from None
    return None


# --- addresses ------------------------------------------------------------------------------


def _addresses(parsed: _Parsed, seconds: float) -> tuple[str, ...]:
    if parsed.literal is not None:
        found = [str(parsed.literal)]
    else:
        found = _resolve_within(parsed.host, parsed.port, seconds)
    if not _private_networks_allowed():
        for address in found:
            why = refusal(address)
            if why is not None:
                raise TargetRefused(f"its host {parsed.host} resolves to {why} ({address})")
    return tuple(found)


def _resolve_within(host: str, port: int, seconds: float) -> list[str]:
    """Ask `resolve` in a helper thread, so that a slow DNS server cannot outlast `seconds`."""
    outcome: dict[str, object] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["addresses"] = resolve(host, port)
        except (OSError, UnicodeError) as err:
            outcome["error"] = err
        finally:
            done.set()

    threading.Thread(target=lookup, name="webhook-dns", daemon=True).start()
    if not done.wait(seconds):
        raise TargetRefused(f"the DNS lookup of {host} took longer than {seconds:g} s")
    addresses = outcome.get("addresses")
    if not isinstance(addresses, list) or not addresses:
        raise TargetRefused(f"its host {host} does not resolve")
    return addresses


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return last32
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # ::a.b.c.d, but not :: or ::1
        return last32
    return None


def _refusal(ip: IPAddress) -> str | None:
    """The class of a non-public address, or None for a public one."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _CGNAT:
            return "carrier-grade NAT"
        if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
            return "reserved"
    else:
        if ip in _UNIQUE_LOCAL:
            return "unique-local"
        if ip.is_site_local or ip.is_reserved:
            return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


def _http_allowed() -> bool:
    return bool(settings.DEBUG or settings.FULFILLMENT_ALLOW_HTTP)


def _private_networks_allowed() -> bool:
    return bool(settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS)
