"""The built-in credential sources' plugin module, registered by the plugin manager as ``builtin_credentials``:
``static`` (``key:``), ``env`` (``key_env:``) and ``files`` (``credentials_dir:``)."""

from __future__ import annotations

from selector_service.credentials.builtin import EnvKeySource, StaticKeySource
from selector_service.credentials.file_source import FileCredentialSource
from selector_service.credentials.oauth_http import AiohttpTokenPoster
from selector_service.plugin import RegisterCredentialSource, hookimpl


def files() -> FileCredentialSource:
    """Credential-file directories, refreshed over HTTP with aiohttp."""
    return FileCredentialSource(AiohttpTokenPoster())


@hookimpl
def register_credential_sources(register: RegisterCredentialSource) -> None:
    """Register ``static``, ``env`` and ``files``."""
    register("static", StaticKeySource)
    register("env", EnvKeySource)
    register("files", files)
