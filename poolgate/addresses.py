"""``host:port`` addresses as users write them (``127.0.0.1:8080``, ``[::1]:8080``, ``0.0.0.0:8080``)."""

from __future__ import annotations


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); ValueError saying the expected form."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{address!r} must be host:port, e.g. 127.0.0.1:8080")
    if int(port) > 65535:
        raise ValueError(f"{address!r}: port {port} is out of range (0-65535)")
    return host.strip("[]"), int(port)


def split_port_only(address: str) -> tuple[str, int]:
    """As :func:`split_host_port`, where ``:port`` alone means 127.0.0.1 (the selector's metrics address)."""
    return split_host_port(f"127.0.0.1{address}" if address.startswith(":") else address)


def check_listen(address: str, unix: bool = False, port_only: bool = False) -> str:
    """``address`` if it is a listen address (``host:port``; ``unix:/path`` with ``unix``; ``:port`` with
    ``port_only``), else ValueError saying the expected form."""
    if unix and address.startswith("unix:"):
        if not address.removeprefix("unix:").strip():
            raise ValueError(f"{address!r} names no socket file, e.g. unix:/run/poolgate/selector.sock")
        return address
    (split_port_only if port_only else split_host_port)(address)
    return address


def loopback_for_wildcard(address: str) -> str:
    """A listen address as a client reaches it: ``0.0.0.0:P`` -> ``127.0.0.1:P``, ``[::]:P`` -> ``[::1]:P``."""
    host, sep, port = address.rpartition(":")
    if sep and host in ("0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    if sep and host in ("[::]", "::"):
        return f"[::1]:{port}"
    return address
