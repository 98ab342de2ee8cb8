"""The edge proxy: OpenAI- and Anthropic-compatible HTTP in front of the selector's account leases.

Modules: ``app`` (application, process resources, the ``poolgate edge`` command), ``handlers`` (HTTP endpoints),
``auth`` (client keys), ``endpoints`` (request parsing), ``routing`` (model -> pool), ``attempts`` (failover loop),
``upstream`` (one attempt), ``streaming`` (SSE and usage), ``headers``, ``outcomes``, ``errors`` (client-shaped
errors) and ``selector_client`` (gRPC).
"""
