"""The edge proxy: OpenAI- and Anthropic-compatible HTTP in front of the selector's account leases.

Modules: ``app`` (application, process resources, the ``poolgate edge`` command), ``handlers`` (HTTP endpoints),
``auth`` (client keys), ``endpoints`` (request parsing), ``routing`` (model -> pool), ``attempts`` (failover loop),
``upstream`` (one attempt; ``attempt_report``, ``upstream_answers`` and ``upstream_stream`` its parts),
``streaming`` (SSE and usage), ``headers``, ``outcomes``, ``errors`` (client-shaped errors), ``leases`` (the edge's
model of leases and outcomes) and ``selector_client`` (the one client of the selector, gRPC: ``replicas``,
``selector_links``, ``selector_errors``).
"""
