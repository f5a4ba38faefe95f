# authserver image: `authserver migrate && authserver serve` on 0.0.0.0:8000.
# No secrets or keys are baked in: AUTHSERVER_SECRET_KEY comes from the environment and
# signing keys live in the database (sealed under it); /app/keys is a volume (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AUTHSERVER_KEYS_DIR=/app/keys \
    AUTHSERVER_DATA_DIR=/app/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY authserver ./authserver
COPY migrations ./migrations
COPY templates ./templates
# Editable: the package finds migrations/ and templates/ next to itself, in /app.
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin authserver \
    && mkdir -p /app/keys /app/data \
    && chown authserver:authserver /app/keys /app/data \
    && chmod 700 /app/keys /app/data

USER authserver
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["sh", "-c", "authserver migrate && exec authserver serve --host 0.0.0.0 --port 8000 --workers \"${AUTHSERVER_WORKERS:-1}\""]
