#!/usr/bin/env bash
# Idempotent: make, locally, the Debian/Python base image Keelson's Dockerfile builds FROM
# (python:3.11-slim) and a registry image for stack.yml (registry:2).
#
# Nothing can be pulled from a public image registry on the dev/CI machines, so the
# `python:3.11-slim` the Dockerfile defaults to is made here: debootstrap (Debian bookworm,
# minbase, python3 3.11 + pip + venv, ca-certificates, git, openssh-client) -> `docker import`.
# It behaves like the official image where Keelson needs it: `python` and `pip` on PATH, pip
# may install into the system Python (no PEP 668 marker), `python -m venv` works.
#
#   bash scripts/base-images.sh            # no-op when the images exist
#   KEELSON_BASE_REBUILD=1 bash scripts/base-images.sh   # re-import (and re-debootstrap if
#                                                        # the cached tarball is gone)
#
# Settings (environment):
#   KEELSON_DEV_STATE      state folder (default /var/lib/keelson-dev); the finished rootfs is
#                          cached there as a tarball, so a re-run after `docker image rm` or a
#                          wiped dockerd takes seconds, not minutes.
#   KEELSON_BASE_IMAGE     tag to make (default python:3.11-slim)
#   KEELSON_REGISTRY_IMAGE tag of the registry image made from Debian's docker-registry on that
#                          base (default registry:2, the one stack.yml runs; empty: skip it)
#   KEELSON_DEBIAN_MIRROR  Debian mirror URL; default: the bookworm URI in this machine's apt
#                          sources (/etc/apt/sources.list{,.d/*}), else debootstrap's default.
set -euo pipefail

STATE=${KEELSON_DEV_STATE:-/var/lib/keelson-dev}
IMAGE=${KEELSON_BASE_IMAGE:-python:3.11-slim}
# stand-in for the registry image stack.yml runs; empty skips it
REGISTRY_IMAGE=${KEELSON_REGISTRY_IMAGE-registry:2}
SUITE=bookworm
# Bump RECIPE when the package list or the post-install steps change: it names the cache.
RECIPE=1
INCLUDE=python3,python3-pip,python3-venv,python-is-python3,ca-certificates,git,openssh-client
CACHE_DIR="$STATE/base"
TARBALL="$CACHE_DIR/rootfs-$SUITE-python-r$RECIPE.tar"
DOCKER=$(command -v docker)

log() { echo "[base-images] $*" >&2; }

check_image() {
  "$DOCKER" run --rm --network none --entrypoint sh "$IMAGE" -c \
    'python -c "import ssl, venv, ensurepip; print(ssl.OPENSSL_VERSION)" && pip --version && git --version && ssh -V' \
    >&2
}


# The machine's own Debian mirror: never name a host here, read apt's configuration.
debian_mirror() {
  if [ -n "${KEELSON_DEBIAN_MIRROR:-}" ]; then echo "$KEELSON_DEBIAN_MIRROR"; return; fi
  local f uri
  # deb822 sources: a stanza whose Suites has "bookworm" (not -security / -updates)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk -v suite="$SUITE" '
      BEGIN { RS=""; FS="\n" }
      {
        u=""; ok=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u=a[1] }
          if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
        }
        if (ok && u != "") { print u; exit }
      }' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  # one-line sources: "deb [opts] URI bookworm main"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($(i+1) == suite && $i !~ /^\[/) { print $i; exit } }' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  echo ""   # debootstrap's built-in default
}

make_tarball() {
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  mkdir -p "$CACHE_DIR"
  local root mirror
  root=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  # debootstrap mounts proc/sys in the target; unmount them whatever happens
  trap 'for m in proc sys dev/pts dev; do umount -l "'"$root"'/$m" 2>/dev/null || true; done; rm -rf "'"$root"'"' EXIT
  mirror=$(debian_mirror)
  log "debootstrap $SUITE (minbase) into $root from ${mirror:-debootstrap default mirror}; takes a few minutes"
  # shellcheck disable=SC2086
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" $mirror \
    >"$CACHE_DIR/debootstrap.log" 2>&1 || {
      log "debootstrap failed; last lines of $CACHE_DIR/debootstrap.log:"; tail -30 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done

  # Like the official image: `python`/`pip` on PATH (python-is-python3, python3-pip), and pip
  # may install into the system interpreter (drop Debian's PEP 668 marker).
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  [ -e "$root/usr/bin/pip" ] || ln -s pip3 "$root/usr/bin/pip"
  # Slim: no package caches or lists (apt-get update brings the lists back when needed).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
  find "$root/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} +
  # docker provides these at run time
  rm -rf "${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/*
  : >"$root/etc/resolv.conf"; : >"$root/etc/hostname"

  tar --numeric-owner -C "$root" -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  rm -rf "$root"; trap - EXIT
  log "cached rootfs: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

make_python_base() {
  [ -s "$TARBALL" ] || make_tarball
  log "docker import $TARBALL as $IMAGE"
"$DOCKER" import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'LABEL io.keelson.dev-base=debootstrap-'"$SUITE"'-r'"$RECIPE" \
  -c 'CMD ["python3"]' \
  "$TARBALL" "$IMAGE" >/dev/null
  check_image || { log "$IMAGE does not run python/ssl/pip/git"; exit 1; }
}

# A stand-in for the official `registry:2` (used by stack.yml's `registry` service): Debian's
# docker-registry binary (Docker Distribution 2.8) on the Python base, laid out like the
# official image: config /etc/docker/registry/config.yml, data /var/lib/registry, port 5000.
make_registry_image() {
  if ! command -v docker-registry >/dev/null; then
    log "installing docker-registry"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
  fi
  local ctx
  ctx=$(mktemp -d)
  cp "$(command -v docker-registry)" "$ctx/registry"
  cat >"$ctx/config.yml" <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
YML
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $IMAGE
COPY registry /bin/registry
COPY config.yml /etc/docker/registry/config.yml
VOLUME ["/var/lib/registry"]
EXPOSE 5000
LABEL io.keelson.dev-base=docker-registry-debian
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
DOCKERFILE
  log "building $REGISTRY_IMAGE from Debian's docker-registry"
  mkdir -p "$CACHE_DIR"
  DOCKER_BUILDKIT=0 "$DOCKER" build -t "$REGISTRY_IMAGE" "$ctx" >"$CACHE_DIR/registry-build.log" 2>&1 || {
    log "building $REGISTRY_IMAGE failed:"; tail -20 "$CACHE_DIR/registry-build.log" >&2; exit 1; }
  rm -rf "$ctx"
  "$DOCKER" run --rm --network none --entrypoint /bin/registry "$REGISTRY_IMAGE" --version >&2
}

if [ "${KEELSON_BASE_REBUILD:-0}" = 1 ] || ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  make_python_base
  rebuilt=1
else
  log "$IMAGE exists"
fi
if [ -n "$REGISTRY_IMAGE" ]; then
  if [ -n "${rebuilt:-}" ] || ! "$DOCKER" image inspect "$REGISTRY_IMAGE" >/dev/null 2>&1; then
    make_registry_image
  else
    log "$REGISTRY_IMAGE exists"
  fi
fi
log "ready: $IMAGE${REGISTRY_IMAGE:+ $REGISTRY_IMAGE}"
