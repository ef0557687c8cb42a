"""Reaching a webhook endpoint safely: resolve its host, check every address, pin one.

A host name is resolved when the webhook is registered and again at every delivery
(DNS can change in between: rebinding), and each time every address must pass
:func:`sscard.events.model.unsafe_address`. The deliverer then connects to the
checked address only: the request goes to that IP, with the original ``Host``
header and, for https, the original name for SNI and certificate verification.

Resolution goes through :data:`resolve`, which tests replace (they cannot use real
DNS), or through a resolver passed in.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx2

from sscard.events.model import UnsafeEndpoint, check_url, unsafe_address, unsafe_host_detail

Resolver = Callable[[str], Sequence[str]]


def system_resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to, in the system's order of preference; none
    when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


resolve: Resolver = system_resolve  # the seam: tests replace it


def loopback_allowed() -> bool:
    """``SSCARD_WEBHOOK_ALLOW_LOOPBACK=1``: endpoints on 127.0.0.1 (tests, the demo)."""
    return os.environ.get("SSCARD_WEBHOOK_ALLOW_LOOPBACK", "") in ("1", "true", "yes")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes: the URL with the checked IP in place of the host, the
    original ``Host`` header, and (https to a name) the name for SNI and verification."""

    url: str
    address: str
    host_header: str
    sni_hostname: str | None


def pin(url: str, *, allow_loopback: bool, resolver: Resolver | None = None) -> Target:
    """Check ``url``, resolve its host, refuse it unless every address is safe, and
    answer the request target pinned to the first one. Raises :class:`UnsafeEndpoint`."""
    checked = check_url(url, allow_loopback=allow_loopback)
    parsed = httpx2.URL(checked)
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded; IPv6 without brackets
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    addresses = [host] if literal else list((resolver or resolve)(host))
    if not addresses or any(unsafe_address(a, allow_loopback=allow_loopback) for a in addresses):
        raise UnsafeEndpoint(unsafe_host_detail(parsed.host), field="url")
    address = addresses[0].split("%", 1)[0]
    return Target(
        url=str(parsed.copy_with(host=address)),
        address=address,
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=host if parsed.scheme == "https" and not literal else None,
    )
