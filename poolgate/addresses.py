"""``host:port`` addresses as users write them (``127.0.0.1:8080``, ``[::1]:8080``, ``0.0.0.0:8080``)."""

from __future__ import annotations


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); ValueError saying the expected form."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{address!r} must be host:port, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def loopback_for_wildcard(address: str) -> str:
    """A listen address as a client reaches it: ``0.0.0.0:P`` -> ``127.0.0.1:P``, ``[::]:P`` -> ``[::1]:P``."""
    host, sep, port = address.rpartition(":")
    if sep and host in ("0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    if sep and host in ("[::]", "::"):
        return f"[::1]:{port}"
    return address
