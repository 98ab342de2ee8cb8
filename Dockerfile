# One image for both processes: `poolgate selector` or `poolgate edge` (the default), reading
# /etc/poolgate/poolgate.yaml. compose.yaml runs one container of each; docs/deployment.md has the commands.
# scripts/check-image-steps.sh (`make check-image`) runs these install steps in a temporary virtualenv.

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# postgres: asyncpg, for selector replicas sharing PostgreSQL; otel: the OpenTelemetry SDK and OTLP/HTTP exporter.
RUN wheel="$(ls /wheels/poolgate-*.whl)" \
    && python -m pip install --no-cache-dir "${wheel}[postgres,otel]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/poolgate --create-home \
       --shell /usr/sbin/nologin poolgate \
    && mkdir -p /etc/poolgate
USER poolgate
# The selector's SQLite database (selector.database: /var/lib/poolgate/poolgate.db): mount a volume here.
WORKDIR /var/lib/poolgate
# 8080: the edge (HTTP); 50151: the selector (gRPC).
EXPOSE 8080 50151
# The edge's liveness; the selector's containers replace it (compose.yaml) with a check of their gRPC port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["poolgate"]
CMD ["edge", "--config", "/etc/poolgate/poolgate.yaml"]
