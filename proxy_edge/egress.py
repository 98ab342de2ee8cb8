"""Which proxy, if any, an upstream call goes through.

In order: the account's ``proxy:``, else its pool's (accounts the selector adds at run time, from credential files or
``poolgate accounts add``, have only their pool's), else the proxy the environment names for the upstream's scheme
(``HTTPS_PROXY`` / ``HTTP_PROXY``, lower case first, read when the edge starts; ``NO_PROXY`` honoured, with CIDR
ranges too) when ``edge.proxy_from_env`` is on. ``direct`` at the account or the pool stops the search: no proxy.
Upstreams on loopback (``localhost``, ``127.0.0.0/8``, ``::1``) never go through the environment's proxy, only
through one the config names.

The answer is worked out once per account and upstream and kept: an attempt pays one dict lookup. A proxy URL may
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

from poolgate.config.schema import DIRECT_PROXY, Config, check_proxy
from poolgate.secrets import redact_url

__all__ = ["Egress", "EgressProxyError", "EnvironmentProxies", "Route"]

log = logging.getLogger("poolgate.edge")

_ROUTES_KEPT = 4096
"""Resolved (account, upstream) pairs kept; beyond that the cache starts over (accounts come and go)."""


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
    """The proxy of each upstream call, from the config and the environment (see the module's docstring)."""

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        self._pools = {name: pool.proxy for name, pool in config.pools.items()}
        self._accounts = {f"{name}/{account.name}": account.proxy or pool.proxy
                          for name, pool in config.pools.items() for account in pool.accounts}
        self._own = sorted({account.proxy for pool in config.pools.values() for account in pool.accounts
                            if account.proxy and account.proxy != DIRECT_PROXY})
        self._env = EnvironmentProxies.read(environ) if config.edge.proxy_from_env else EnvironmentProxies()
        self._parsed: dict[str, Route] = {}
        self._routes: dict[tuple[str, str, str], Route | None] = {}
        configured = {p for p in (*self._pools.values(), *self._accounts.values()) if p and p != DIRECT_PROXY}
        self.active = bool(configured or self._env.http or self._env.https)
        """Whether any call may go through a proxy (else the edge does not ask)."""

    def describe(self) -> str:
        """One line for the log at start: which proxies are in use (credentials removed)."""
        parts = [f"pool {name} through {redact_url(proxy)}" for name, proxy in sorted(self._pools.items())
                 if proxy and proxy != DIRECT_PROXY]
        if self._own:
            parts.append(f"accounts of their own through {', '.join(redact_url(p) for p in self._own)}")
        for scheme, proxy in (("https", self._env.https), ("http", self._env.http)):
            if proxy:
                parts.append(f"{scheme} upstreams through the environment's {redact_url(proxy)}"
                             + (f" (NO_PROXY {self._env.no_proxy})" if self._env.no_proxy else ""))
        return "; ".join(parts) or "no egress proxy"

    def route(self, account_id: str, url: URL) -> Route | None:
        """The proxy for ``account_id``'s call to ``url``, or None to go direct."""
        key = (account_id, url.scheme, url.raw_authority)
        try:
            return self._routes[key]
        except KeyError:
            pass
        if len(self._routes) >= _ROUTES_KEPT:
            self._routes.clear()
        route = self._routes[key] = self._resolve(account_id, url)
        return route

    def _resolve(self, account_id: str, url: URL) -> Route | None:
        setting = self._accounts.get(account_id)
        if setting is None:  # added at run time: its pool's
            setting = self._pools.get(account_id.partition("/")[0], "")
        if setting == DIRECT_PROXY:
            return None
        proxy = setting or self._env.for_url(url)
        if not proxy:
            return None
        route = self._parsed.get(proxy)
        if route is None:
            route = self._parsed[proxy] = Route.parse(proxy)
        return route
