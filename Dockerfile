# syntax=docker/dockerfile:1
# Notion Sync worker: `docker build -t notion-sync .`; runs `python worker.py`.
# The Notion token is never part of the image: NOTION_TOKEN or a mounted file named by NOTION_TOKEN_FILE.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p notion_sync && touch worker.py starter.py \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall -y notion-sync
COPY notion_sync ./notion_sync
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py starter.py ./
RUN /opt/venv/bin/pip install --no-deps . \
    # The embedded dev server's binary: workers talk to a real cluster, the image needs no server.
    && rm -f /opt/venv/bin/temporal

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --create-home --uid 10001 --user-group notion \
    && mkdir -p /var/lib/notion-sync /data \
    && chown notion:notion /var/lib/notion-sync /data
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root worker.py /app/worker.py
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NOTION_SYNC_STATE_DIR=/var/lib/notion-sync \
    NOTION_SYNC_LOG_FORMAT=json \
    NOTION_SYNC_METRICS_PORT=9464 \
    NOTION_SYNC_HEALTH_PORT=8080
EXPOSE 8080 9464
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["python", "worker.py"]
