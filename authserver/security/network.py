"""The client's IP address behind proxies, and the admin IP/CIDR deny list.

``X-Forwarded-For`` is client-controlled except for the entries appended by
proxies we run, so it is read only when the peer is a trusted proxy, from the
right, stopping at the first address that is not a trusted proxy (MDN
"X-Forwarded-For: Selecting an IP address"; the same rule as nginx
``real_ip_recursive on``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"
"""Returned by :func:`client_ip` when the server has no peer address."""


def _parse_ip(value: str) -> IPAddress:
    """Parse an address, reading IPv4-mapped IPv6 (``::ffff:a.b.c.d``) as IPv4; raises ValueError."""
    ip = ipaddress.ip_address(value.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _peer(host: str) -> tuple[IPAddress | None, str]:
    """The peer address parsed and normalised, or (None, as given) when it is not one."""
    try:
        ip = _parse_ip(host)
    except ValueError:
        return None, host
    return ip, str(ip)


# the same few peers (proxies, load balancers) send most requests; only real addresses
# (at most 45 characters) are cached, so odd peer strings cannot fill it
_cached_peer = functools.lru_cache(maxsize=4096)(_peer)


@functools.lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(parse_cidr(c)) for c in cidrs)


def _forwarded_for(headers: Mapping[str, str]) -> list[str]:
    getlist = getattr(headers, "getlist", None)  # Starlette Headers keep repeated fields
    if callable(getlist):
        values = list(getlist("x-forwarded-for"))
    else:
        values = [v for k, v in headers.items() if k.lower() == "x-forwarded-for"]
    return [entry.strip() for value in values for entry in value.split(",")]


def client_ip(
    scope_client_host: str | None, headers: Mapping[str, str], trusted_proxies: tuple[str, ...]
) -> str:
    """The address to attribute a request to.

    The peer address, unless the peer is inside ``trusted_proxies``; then
    ``X-Forwarded-For`` is walked from the right, skipping trusted proxies, and
    the first untrusted address is returned. An invalid entry stops the walk
    and the last valid address seen is used. With no trusted proxies the
    header is ignored. Addresses come back normalised (IPv4-mapped IPv6 as
    IPv4); a peer that is not an IP address is returned as given, a missing
    one as :data:`UNKNOWN`.
    """
    if not scope_client_host:
        return UNKNOWN
    peer, text = (_cached_peer if len(scope_client_host) <= 45 else _peer)(scope_client_host)
    if peer is None or not trusted_proxies:
        return text
    trusted = _networks(tuple(trusted_proxies))
    if not any(peer in net for net in trusted):
        return text
    current = peer
    for entry in reversed(_forwarded_for(headers)):
        try:
            current = _parse_ip(entry)
        except ValueError:
            break
        if not any(current in net for net in trusted):
            break
    return str(current)


def parse_cidr(s: str) -> str:
    """Validate and normalise one deny-list entry: ``"10.0.0.0/8"``, ``"2001:db8::/32"``, an address.

    A bare address becomes ``/32`` or ``/128``; an IPv4-mapped IPv6 network
    becomes the IPv4 network. Raises :class:`ValueError` with a message for
    the CLI when the text is not a network or has host bits set.
    """
    text = s.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{s!r} is not an IP address or CIDR network (e.g. 203.0.113.0/24)") from None
    if "/" in text and net.network_address != ipaddress.ip_interface(text).ip:
        raise ValueError(f"{s!r} has host bits set; did you mean {net}?")
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            net = ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return str(net)


class DenyList:
    """A set of IPv4/IPv6 networks that may not use the server (``ip_deny_entries``)."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        """Raises :class:`ValueError` (from :func:`parse_cidr`) on an invalid entry."""
        self._networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(parse_cidr(c)) for c in cidrs)

    def __len__(self) -> int:
        return len(self._networks)

    def contains(self, ip: str) -> bool:
        """True when ``ip`` is inside a listed network; False for an invalid address."""
        try:
            address = _parse_ip(ip)
        except ValueError:
            return False
        return any(address in net for net in self._networks)
