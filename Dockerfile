# Treadle's image: every process runs `treadle <command>` from it (scheduler, worker, beat,
# api, flower, `db upgrade`). docker-compose.yml and helm/treadle use it; building, pinning
# and adding packs: docs/deployment.md#the-image.
#
#   docker build -t treadle:dev .
#
# The base is pinned by digest (the multi-platform index of python:3.11.13-slim-bookworm, as
# published on Docker Hub); re-pin with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# and pass another with --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# -- build: a virtual environment holding Treadle's wheel and its dependencies -------------
FROM ${PYTHON_IMAGE} AS build
# Extras installed besides the core: flower (`treadle flower`) and otel (traces).
ARG TREADLE_EXTRAS=flower,otel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The package is src/treadle; its common, scheduler, worker, packs and migrations are
# symbolic links to the top-level folders, which the wheel build follows.
COPY pyproject.toml README.md ./
COPY src ./src
COPY common ./common
COPY scheduler ./scheduler
COPY worker ./worker
COPY packs ./packs
COPY migrations ./migrations
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/treadle \
 && /opt/treadle/bin/pip install "$(ls /wheels/treadle-*.whl)[${TREADLE_EXTRAS}]" \
 && /opt/treadle/bin/treadle --help >/dev/null

# -- runtime: the environment, a non-root user, nothing to build with ----------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="treadle" \
      org.opencontainers.image.description="Treadle workflow orchestration: scheduler, workers, beat, API" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid and gid 10001, as helm/treadle's podSecurityContext runs them.
RUN groupadd --system --gid 10001 treadle \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/treadle --create-home \
      --shell /usr/sbin/nologin treadle \
 && mkdir -p /srv/treadle/packs
COPY --from=build /opt/treadle /opt/treadle
# Logs as JSON lines; heartbeats (`treadle health`) under /tmp, writable even when the root
# filesystem is read-only (Helm mounts an emptyDir there). Your packs: mount or copy them
# to /srv/treadle/packs and set TREADLE_PACK_PATHS='["/srv/treadle/packs"]'.
ENV PATH=/opt/treadle/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TREADLE_LOG_FORMAT=json \
    TREADLE_HEALTH_DIR=/tmp/treadle-health
WORKDIR /var/lib/treadle
USER 10001:10001
# The API (treadle api --host 0.0.0.0), Flower, and the metrics of the other services.
EXPOSE 8080 5555 9464
# No HEALTHCHECK here: each service has its own (`treadle health <service>`, see
# docker-compose.yml), and an image-wide one would be wrong for all but one of them.
CMD ["treadle", "--help"]
