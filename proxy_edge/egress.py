"""Which proxy, if any, an upstream call goes through.

In order: the account's ``proxy:``, else its pool's (the selector sends the one that applies with each lease:
accounts it adds at run time, from credential files or ``poolgate accounts add``, have only their pool's), else the
proxy the environment names for the upstream's scheme
(``HTTPS_PROXY`` / ``HTTP_PROXY``, lower case first, read when the edge starts; ``NO_PROXY`` honoured, with CIDR
ranges too) when ``edge.proxy_from_env`` is on. ``direct`` at the account or the pool stops the search: no proxy.
Upstreams on loopback (``localhost``, ``127.0.0.0/8``, ``::1``) never go through the environment's proxy, only
through one the config names.

The answer is worked out once per proxy setting and upstream and kept: an attempt pays one dict lookup. A proxy URL may
carry credentials (``http://user:pass@host:3128``); they are sent to the proxy (``Proxy-Authorization``) and shown
nowhere: :attr:`Route.shown` and every error of a call through a proxy have them removed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from poolgate.config.schema import DIRECT_PROXY, check_proxy
from poolgate.secrets import redact_url

__all__ = ["Egress", "EgressProxyError", "EnvironmentProxies", "Route"]

log = logging.getLogger("poolgate.edge")

_ROUTES_KEPT = 4096
"""Resolved (proxy setting, upstream) pairs kept; beyond that the cache starts over."""


class EgressProxyError(aiohttp.ClientConnectionError):
    """An upstream call through a proxy failed (the proxy is down, refused the credentials, or the upstream behind it
    failed); the message names the proxy without its credentials. A network error for failover."""


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One proxy: its URL as aiohttp takes it (credentials included) and as it may be shown."""

    url: URL
    shown: str
    _secrets: tuple[str, ...] = field(repr=False)

    @classmethod
    def parse(cls, proxy: str) -> Route:
        url = URL(proxy)
        secrets = tuple(s for s in (url.raw_user, url.raw_password, url.user, url.password) if s)
        return cls(url, redact_url(proxy), tuple(sorted(set(secrets), key=len, reverse=True)))

    def error(self, problem: str) -> EgressProxyError:
        """An error of a call through this proxy: ``problem`` with the proxy's credentials removed."""
        for secret in self._secrets:
            problem = problem.replace(secret, "…")
        return EgressProxyError(f"through the proxy {self.shown}: {problem}")


@dataclass(frozen=True, slots=True)
class EnvironmentProxies:
    """The proxies the standard environment variables name (as ``urllib.request.getproxies`` reads them)."""

    http: str = ""
    https: str = ""
    no_proxy: str = ""

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> EnvironmentProxies:
        """``http_proxy``, ``https_proxy`` and ``no_proxy`` in any case, the lower-case name first (an empty one
        unsets); ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set (a CGI request could have set it).
        ``ALL_PROXY`` is not read. A value that is not an HTTP proxy URL is ignored with a warning."""
        environ = os.environ if environ is None else environ
        found: dict[str, str] = {}
        for name, value in environ.items():
            lower = name.lower()
            if value and lower.endswith("_proxy"):
                found[lower[:-6]] = value
        if "REQUEST_METHOD" in environ:
            found.pop("http", None)
        for name, value in environ.items():  # as urllib does: a name ending in lower-case "_proxy" wins
            if name.endswith("_proxy"):
                if value:
                    found[name[:-6].lower()] = value
                else:
                    found.pop(name[:-6].lower(), None)
        return cls(_env_proxy("http", found.get("http", "")), _env_proxy("https", found.get("https", "")),
                   found.get("no", ""))

    def for_url(self, url: URL) -> str:
        """The proxy for ``url``: its scheme's, unless ``url``'s host is on loopback or matches ``no_proxy``."""
        proxy = self.https if url.scheme == "https" else self.http if url.scheme == "http" else ""
        host = url.host or ""
        if not proxy or not host or _loopback(host) or self.bypasses(host, url.port):
            return ""
        return proxy

    def bypasses(self, host: str, port: int | None) -> bool:
        """Whether ``no_proxy`` names ``host``: ``*``; a name, which covers its subdomains too (a leading dot is
        the same); ``name:port`` for that port only; an IP address; a CIDR range such as ``10.0.0.0/8``."""
        host = host.lower().rstrip(".")
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for entry in self.no_proxy.lower().split(","):
            entry = entry.strip().lstrip(".")
            if not entry:
                continue
            if entry == "*":
                return True
            if "/" in entry:
                try:
                    if address is not None and address in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name, colon, entry_port = entry.rpartition(":") if not entry.endswith("]") else ("", "", entry)
            if not colon or not entry_port.isdigit() or name.endswith(":"):  # no port (or a bare IPv6 address)
                name, entry_port = entry, ""
            if entry_port and port != int(entry_port):
                continue
            name = name.strip("[]")
            if host == name or host.endswith("." + name):
                return True
        return False


def _env_proxy(scheme: str, value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    if "://" not in value:
        value = "http://" + value  # "proxy:3128", as curl reads it
    try:
        return check_proxy(value) if value != DIRECT_PROXY else ""
    except ValueError as exc:
        log.warning("ignoring the environment's %s proxy: %s", scheme, exc)
        return ""


def _loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Egress:
    """The proxy of each upstream call, from the lease and the environment (see the module's docstring)."""

    def __init__(self, proxy_from_env: bool = True, environ: Mapping[str, str] | None = None) -> None:
        self._env = EnvironmentProxies.read(environ) if proxy_from_env else EnvironmentProxies()
        self._env_any = bool(self._env.http or self._env.https)
        self._parsed: dict[str, Route] = {}
        self._routes: dict[tuple[str, str, str], Route | None] = {}

    def describe(self) -> str:
        """One line for the log at start: the environment's proxies (credentials removed). Pools and accounts with
        a ``proxy:`` of their own are named by the selector's config, not here."""
        parts = []
        for scheme, proxy in (("https", self._env.https), ("http", self._env.http)):
            if proxy:
                parts.append(f"{scheme} upstreams through the environment's {redact_url(proxy)}"
                             + (f" (NO_PROXY {self._env.no_proxy})" if self._env.no_proxy else ""))
        return "; ".join(parts) or "no proxy from the environment"

    @property
    def from_environment(self) -> bool:
        """Whether the environment names a proxy the edge uses."""
        return self._env_any

    def route(self, setting: str, url: URL) -> Route | None:
        """The proxy for a call to ``url`` whose lease says ``setting`` (the account's or pool's ``proxy:``: a URL,
        ``direct``, or empty for the environment's), or None to go direct."""
        if not setting and not self._env_any:
            return None
        key = (setting, url.scheme, url.raw_authority)
        try:
            return self._routes[key]
        except KeyError:
            pass
        if len(self._routes) >= _ROUTES_KEPT:
            self._routes.clear()
        route = self._routes[key] = self._resolve(setting, url)
        return route

    def _resolve(self, setting: str, url: URL) -> Route | None:
        if setting == DIRECT_PROXY:
            return None
        proxy = setting or self._env.for_url(url)
        if not proxy:
            return None
        route = self._parsed.get(proxy)
        if route is None:
            try:
                route = Route.parse(check_proxy(proxy))
            except ValueError as exc:  # the selector checked it; a client of another version may not have
                raise EgressProxyError(f"the account's proxy cannot be used: {exc}") from None
            self._parsed[proxy] = route
        return route
