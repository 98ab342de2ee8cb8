"""Where accounts' credentials come from: static keys, environment variables, OAuth credential files, plugins.

:mod:`.source` is the contract sources implement (re-exported by :mod:`selector_service.plugin`); :mod:`.builtin` has
the static-key and environment sources; :mod:`.file_source` is the credential-file directory source, built from
:mod:`.files` (parse, atomic write-back), :mod:`.watcher` (directory polling) and :mod:`.oauth` (the refresh_token
grant, with HTTP through an injected callable; :mod:`.oauth_http` is the aiohttp one). :mod:`.manager` applies the
sources' accounts to the selector and keeps expiring credentials fresh through :mod:`.refresh` (single flight,
backoff).
"""
