"""poolgate's built-in selection strategies.

They are an ordinary poolgate plugin: :mod:`poolgate_plugins.strategies` is registered through the ``poolgate``
entry-point group, exactly like a third-party package, and the strategies use only the public API in
:mod:`selector_service.plugin`.
"""
