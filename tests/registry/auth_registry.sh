#!/usr/bin/env bash
# A private registry that needs a login: Debian's docker-registry with htpasswd (bcrypt) auth and
# TLS from a CA made here. Used by tests/integration/test_registry_auth.py (on loopback) and by
# tests/multinode/registry_auth.py (on the lab bridge's host side).
#
#   bash tests/registry/auth_registry.sh up   STATE HOST PORT USER PASSWORD_FILE
#   bash tests/registry/auth_registry.sh down STATE HOST PORT
#
# `up` first runs `down` (idempotent), then makes in STATE: ca.crt/ca.key, a server certificate
# for HOST (an IP or a name, as subjectAltName), htpasswd (`htpasswd -B`), config.yml and the
# storage folder; it starts `docker-registry serve` on HOST:PORT (pid in STATE/pid) and copies
# ca.crt to /etc/docker/certs.d/HOST:PORT/ca.crt, which every dockerd on this machine reads on
# each registry connection (no restart needed). `down` stops that registry (its pid is checked
# against its command line) and removes the certs.d folder and STATE.
# The password is read from a file so it never shows on a command line.
set -euo pipefail

log() { echo "[auth-registry] $*" >&2; }
CERTS_D=${KEELSON_CERTS_D:-/etc/docker/certs.d}

need_tools() {
  local pkgs=()
  command -v docker-registry >/dev/null || pkgs+=(docker-registry)
  command -v htpasswd >/dev/null || pkgs+=(apache2-utils)
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v curl >/dev/null || pkgs+=(curl)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
}

down() {  # down STATE HOST PORT
  local state=$1 host=$2 port=$3 pid
  pid=$(cat "$state/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$state/config.yml"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "${CERTS_D:?}/$host:$port" "$state"
}

up() {  # up STATE HOST PORT USER PASSWORD_FILE
  local state=$1 host=$2 port=$3 user=$4 pwfile=$5 san
  need_tools
  down "$state" "$host" "$port"
  mkdir -p "$state/data"
  chmod 700 "$state"
  if [[ $host =~ ^[0-9.]+$ ]]; then san="IP:$host"; else san="DNS:$host"; fi
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=keelson test CA $host:$port" \
    -keyout "$state/ca.key" -out "$state/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$host" \
    -keyout "$state/server.key" -out "$state/server.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$state/ext.cnf"
  openssl x509 -req -in "$state/server.csr" -CA "$state/ca.crt" -CAkey "$state/ca.key" \
    -CAcreateserial -days 2 -extfile "$state/ext.cnf" -out "$state/server.crt" 2>/dev/null
  htpasswd -B -i -c "$state/htpasswd" "$user" <"$pwfile" 2>/dev/null
  cat >"$state/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/data
  delete:
    enabled: true
auth:
  htpasswd:
    realm: keelson-test
    path: $state/htpasswd
http:
  addr: $host:$port
  tls:
    certificate: $state/server.crt
    key: $state/server.key
YML
  nohup docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 9>&- &
  echo $! >"$state/pid"
  mkdir -p "$CERTS_D/$host:$port"
  cp "$state/ca.crt" "$CERTS_D/$host:$port/ca.crt"
  # /v2/ answers 401 without a login: any HTTP answer over trusted TLS means it is up
  for _ in $(seq 1 60); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$state/ca.crt" "https://$host:$port/v2/" 2>/dev/null || true)
    [ "$code" = 401 ] && { log "ready: https://$host:$port (htpasswd user $user)"; return 0; }
    sleep 0.25
  done
  log "registry did not start"; cat "$state/registry.log" >&2; exit 1
}

case "${1:-}" in
  up) shift; [ $# = 5 ] || { echo "usage: $0 up STATE HOST PORT USER PASSWORD_FILE" >&2; exit 2; }; up "$@" ;;
  down) shift; [ $# = 3 ] || { echo "usage: $0 down STATE HOST PORT" >&2; exit 2; }; down "$@" ;;
  *) echo "usage: $0 up|down ..." >&2; exit 2 ;;
esac
