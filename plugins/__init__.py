"""poolgate's built-in selection strategies.

They are ordinary poolgate plugins: :mod:`poolgate_plugins.strategies` and :mod:`poolgate_plugins.credentials` use
only the public API in :mod:`selector_service.plugin`, helpers included, as a third-party package does. The plugin
manager registers them by import, under the names of their entry points in poolgate's ``pyproject.toml``
(``builtin_strategies``, ``builtin_credentials``), before it loads the installed packages' entry points.
"""
