# syntax=docker/dockerfile:1
#
# wrapupd container image.
#
#   docker build -t wrapupd .
#   docker run -d --name wrapupd \
#     -v "$PWD/wrapupd.toml:/etc/wrapupd/wrapupd.toml:ro" \
#     -v "$PWD/client_secret:/run/secrets/client_secret:ro" \
#     -e WRAPUPD_GENESYS__CLIENT_SECRET_FILE=/run/secrets/client_secret \
#     -v wrapupd-state:/var/lib/wrapupd -p 127.0.0.1:9464:9464 wrapupd
#
# Settings come from the mounted TOML file and/or WRAPUPD_* environment variables. The client
# secret comes from a mounted file (Docker/Kubernetes secret; point
# WRAPUPD_GENESYS__CLIENT_SECRET_FILE at it) or, less safely, from WRAPUPD_GENESYS__CLIENT_SECRET.
# The ledger in /var/lib/wrapupd must survive restarts: keep it on a volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: build the virtualenv ------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/wrapupd
WORKDIR /src
# Only what the distribution needs (see .dockerignore): the daemon; the emulator is the separate
# wrapupd-emulator distribution (emulator/) and never enters the image.
# The dependencies exactly as locked (versions and hashes: requirements.lock, `make lock`), then
# the daemon itself without resolving anything again.
COPY pyproject.toml README.md requirements.lock ./
COPY daemon ./daemon
RUN /opt/wrapupd/bin/pip install --upgrade pip \
 && /opt/wrapupd/bin/pip install --require-hashes --no-deps -r requirements.lock \
 && /opt/wrapupd/bin/pip install --no-deps . \
 && /opt/wrapupd/bin/pip check \
 && /opt/wrapupd/bin/wrapupd --help >/dev/null

# --- stage 2: runtime -------------------------------------------------------------------------
# Same base image, so the venv's interpreter symlinks and script shebangs stay valid.
FROM ${PYTHON_IMAGE} AS runtime
# tini as PID 1: it forwards SIGTERM to wrapupd and reaps any orphan.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 wrapupd \
 && useradd --system --uid 10001 --gid wrapupd --home-dir /var/lib/wrapupd \
      --no-create-home --shell /usr/sbin/nologin wrapupd \
 && install -d -o wrapupd -g wrapupd -m 0700 /var/lib/wrapupd \
 && install -d -m 0755 /etc/wrapupd
COPY --from=build /opt/wrapupd /opt/wrapupd
# The image's own defaults sit *below* the mounted settings file (WRAPUPD_DEFAULTS_FILE): a file
# that asks for a loopback listener gets one; only an explicit -e WRAPUPD_* overrides the file.
RUN printf '%s\n' '[http]' 'listen = "0.0.0.0:9464"' '[daemon]' 'state_dir = "/var/lib/wrapupd"' \
      '[log]' 'format = "json"' > /etc/wrapupd/container-defaults.toml
ENV PATH=/opt/wrapupd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WRAPUPD_DEFAULTS_FILE=/etc/wrapupd/container-defaults.toml

USER 10001:10001
WORKDIR /var/lib/wrapupd
VOLUME /var/lib/wrapupd
EXPOSE 9464

# slim has no curl: probe /livez with the interpreter that is already there, on the port the
# daemon was told to listen on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('WRAPUPD_HTTP__LISTEN', ':9464').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=4)"]

# Exec form under tini: SIGTERM reaches wrapupd, which drains (20 s deadline); give
# `docker stop -t 45` / terminationGracePeriodSeconds >= 30 for the drain to finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "wrapupd"]
CMD ["run", "--config", "/etc/wrapupd/wrapupd.toml"]
