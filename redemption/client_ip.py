"""The client's IP address, as every IP-based limit counts it (redeems, staff sign-in).

Behind N trusted reverse proxies (TRUSTED_PROXY_COUNT), each one appends the address it got
the request from to X-Forwarded-For, so the Nth address from the right is the one the outermost
trusted proxy saw: the client. Everything further left was written by the client and is never
read. When the header holds fewer than N addresses, or the chosen one is not an IP address,
the peer address (REMOTE_ADDR) counts instead. With N = 0 (the default) the header is ignored.

An IPv6 client is counted per /64 (the block one host or home usually gets), so hopping between
the addresses of one's own /64 does not reset a limit.
"""

import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest

IPV6_GROUP_PREFIX = 64
UNKNOWN = "unknown"


def client_ip(request: HttpRequest) -> str:
    """The address (IPv4) or /64 network (IPv6) the IP-based limits count for this request."""
    return client_ip_from(request.META, trusted_proxies=settings.TRUSTED_PROXY_COUNT)


def client_ip_from(meta: Mapping[str, Any], *, trusted_proxies: int) -> str:
    """As client_ip(), from a WSGI environ and a number of trusted proxies."""
    if trusted_proxies > 0:
        # Several X-Forwarded-For headers reach the app joined by commas, in order.
        hops = [h.strip() for h in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= trusted_proxies:
            chosen = _address(hops[-trusted_proxies])
            if chosen is not None:
                return _grouped(chosen)
    peer_text = str(meta.get("REMOTE_ADDR") or "").strip()
    peer = _address(peer_text)
    if peer is not None:
        return _grouped(peer)
    return peer_text[:100] or UNKNOWN


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address written alone, in brackets, or with a port; None for anything else."""
    text = value.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1] or [2001:db8::1]:443
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # an IPv4 client seen through a dual-stack socket
    return ip


def _grouped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((int(ip), IPV6_GROUP_PREFIX), strict=False))
