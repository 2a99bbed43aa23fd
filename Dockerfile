# syntax=docker/dockerfile:1
# otlpd container image (docs/deploy.md).
#
#   docker build -t otlpd:dev .
#   docker run --rm --read-only --tmpfs /tmp -p 4317:4317 -p 4318:4318 -p 8080:8080 otlpd:dev
#
# Two stages: `build` makes a virtualenv from the hashed lock files (wheels only, no
# compiler) plus the otlpd wheel; the runtime stage copies just that virtualenv onto
# the same slim Python base, with no pip, no build backend and no package manager
# cache, and runs as an unprivileged uid. The root file system can be mounted
# read-only: bytecode is compiled at build time, the only writable paths otlpd needs
# are its working directory /var/lib/otlpd (a volume: file exporter output, the
# embedded store under ./data, DuckDB's spill files beside it) and /tmp.
#
# The base is pinned to a Python minor version and Debian release; CI resolves it
# to a digest at build time and records it in the image's provenance. To pin a
# digest here: docker buildx imagetools inspect python:3.11-slim-bookworm, then
# build with --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# The build backend (hatchling) lives in its own environment and never reaches the image.
COPY requirements/build.lock requirements/runtime.lock requirements/
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements/build.lock

# Runtime dependencies first (cached until a lock file changes), wheels only, hash-checked.
# The target environment has no pip of its own: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/otlpd \
 && python -m pip --python /opt/otlpd/bin/python install \
        --require-hashes --only-binary=:all: --no-deps -r requirements/runtime.lock

COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && python -m pip --python /opt/otlpd/bin/python install --no-deps --no-index /wheels/otlpd-*.whl \
 && /opt/otlpd/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/otlpd/lib \
 && /opt/otlpd/bin/otlpd version


FROM ${PYTHON_IMAGE} AS runtime
ARG OTLPD_UID=10001
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="otlpd" \
      org.opencontainers.image.description="OpenTelemetry (OTLP) collector and telemetry backend in Python" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# No build tooling in the final image: drop the base image's pip/setuptools/wheel,
# create the unprivileged user and its data directory.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && groupadd --system --gid "${OTLPD_UID}" otlpd \
 && useradd --system --uid "${OTLPD_UID}" --gid otlpd --home-dir /var/lib/otlpd \
        --no-create-home --shell /usr/sbin/nologin otlpd \
 && install -d -o otlpd -g otlpd -m 0750 /var/lib/otlpd \
 && install -d -m 0755 /etc/otlpd

COPY --from=build /opt/otlpd /opt/otlpd

ENV PATH=/opt/otlpd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OTLPD_LOG_FORMAT=json

# The working directory is the data directory: relative paths in the config
# (./data/..., file exporter paths) land on the volume, owned by the otlpd user.
WORKDIR /var/lib/otlpd
VOLUME ["/var/lib/otlpd"]
USER ${OTLPD_UID}:${OTLPD_UID}

# 4317 OTLP/gRPC, 4318 OTLP/HTTP, 8080 health (/health/live, /health/ready) and /metrics.
EXPOSE 4317 4318 8080

# otlpd itself handles SIGTERM (drain within service.shutdown_timeout, then exit 0) and
# reaps its worker processes, so it runs as PID 1 with no init shim. Give it more than
# shutdown_timeout to stop: docker stop --time 40, compose stop_grace_period, Kubernetes
# terminationGracePeriodSeconds.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('OTLPD_HTTP_ENDPOINT', ':8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/health/live', timeout=2)"]

# No config file = the built-in default (OTLP in, debug exporter; OTLPD_EXPORTER_OTLP_ENDPOINT
# forwards upstream). Mount a config and set OTLPD_CONFIG, or pass `serve --config FILE`.
ENTRYPOINT ["otlpd"]
CMD ["serve"]
