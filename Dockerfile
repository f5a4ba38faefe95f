# authserver image: the wheel is built in the first stage and installed in the second, so
# the image runs exactly what `pip install` gives (templates and migrations inside the
# package); at start `authserver migrate && authserver serve` on 0.0.0.0:8000.
# No secrets or keys are baked in: AUTHSERVER_SECRET_KEY comes from the environment and
# signing keys from the volume mounted at /app/keys (see compose.yaml).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

FROM base AS wheel
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY authserver ./authserver
COPY migrations ./migrations
COPY templates ./templates
RUN pip wheel --no-deps --wheel-dir /dist .

FROM base
ENV AUTHSERVER_KEYS_DIR=/app/keys \
    AUTHSERVER_DATA_DIR=/app/data
COPY --from=wheel /dist /dist
RUN pip install /dist/*.whl \
    && rm -rf /dist \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin authserver \
    && mkdir -p /app/keys /app/data \
    && chown authserver:authserver /app/keys /app/data \
    && chmod 700 /app/keys /app/data

WORKDIR /app
USER authserver
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["sh", "-c", "authserver migrate && exec authserver serve --host 0.0.0.0 --port 8000 --workers \"${AUTHSERVER_WORKERS:-1}\""]
