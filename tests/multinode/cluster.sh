#!/usr/bin/env bash
# A separate 3-node Docker Swarm on this one machine, for tests/multinode.
#
#   bash tests/multinode/cluster.sh up     # (re)create everything; prints KEY=VALUE lines
#   bash tests/multinode/cluster.sh down   # remove everything (also what a crashed run left)
#   bash tests/multinode/cluster.sh env    # print the KEY=VALUE lines only
#   bash tests/multinode/cluster.sh stop w2   # stop one node's dockerd (the swarm sees it down)
#
# Layout: a bridge kmn0 on 10.213.47.0/24 (host side 10.213.47.1), one network namespace per
# node (kmn-m1 = manager, kmn-w1 and kmn-w2 = workers) joined to it by a veth pair, and in each
# namespace its own Debian dockerd (own data-root, exec-root, pidfile and unix socket). A private
# Debian docker-registry listens on the bridge's host side (10.213.47.1:5047); the nodes treat
# it as an insecure registry. No node has a default route: traffic stays on the bridge.
# A second registry, which needs a login and speaks TLS (10.213.47.1:5048), is started by the
# registry-credential test on demand (tests/registry/auth_registry.sh); `down` removes it.
# The machine's main dockerd, its swarm and its registry are never touched.
#
# `up` first runs `down`, so it is idempotent and repairs whatever a crashed run left behind
# (dockerds, their containerds and shims, mounts, namespaces, the bridge, the FORWARD rule,
# the registry, the state folder). Everything removed is found by our own names and paths.
# Concurrent runs are serialised with flock on $LOCK (set KEELSON_MULTINODE_LOCKED=1 when the
# caller already holds it, as the pytest fixture does).
set -euo pipefail

PREFIX=${KEELSON_MN_PREFIX:-10.213.47}
BR=kmn0
HOST_IP=$PREFIX.1
REG_PORT=${KEELSON_MN_REGISTRY_PORT:-5047}
REGISTRY=$HOST_IP:$REG_PORT
# the registry that needs a login (tests/multinode/test_registry_auth_multinode.py starts it
# with tests/registry/auth_registry.sh, state in $STATE/authreg): `down` removes it too
AUTH_REG_PORT=${KEELSON_MN_AUTH_REGISTRY_PORT:-5048}
STATE=/var/lib/keelson-multinode
RUN=/run/keelson-multinode
LOCK=/run/lock/keelson-multinode.lock
NODES=(m1 w1 w2)
declare -A NODE_IP=([m1]=$PREFIX.11 [w1]=$PREFIX.12 [w2]=$PREFIX.13)
FWD_COMMENT=keelson-multinode
MAIN_DOCKER_HOST=${KEELSON_MN_MAIN_DOCKER_HOST:-unix:///var/run/docker.sock}

log() { echo "[multinode] $*" >&2; }
sock() { echo "$RUN/$1.sock"; }
dk() { local n=$1; shift; docker -H "unix://$(sock "$n")" "$@"; }

lock() {
  [ "${KEELSON_MULTINODE_LOCKED:-}" = 1 ] && return 0
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock -w 900 9 || { log "another multinode run holds $LOCK"; exit 1; }
}

need_tools() {
  local pkgs=()
  command -v ip >/dev/null || pkgs+=(iproute2)
  [ -x /usr/sbin/dockerd ] || pkgs+=(docker.io)
  command -v docker-registry >/dev/null || pkgs+=(docker-registry)
  command -v nsenter >/dev/null || pkgs+=(util-linux)
  command -v iptables >/dev/null || pkgs+=(iptables)
  command -v curl >/dev/null || pkgs+=(curl)
  command -v findmnt >/dev/null || pkgs+=(util-linux)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  command -v docker >/dev/null || { log "no docker CLI"; exit 1; }
}

# pids whose command line mentions one of our private paths (never a match on a name alone)
our_pids() {
  local pid cmd
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = $$ ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    case "$cmd" in
      *"$STATE/"*|*"$RUN/"*) echo "$pid" ;;
    esac
  done
}

kill_pids() {  # kill_pids SIGNAL pid...
  local sig=$1; shift
  [ $# -gt 0 ] && kill "-$sig" "$@" 2>/dev/null || true
}

# ids of the containers our nodes ever made (64 hex digits each: unique on this machine)
our_container_ids() {
  ls "$STATE"/*/data/containers/ 2>/dev/null | grep -E '^[0-9a-f]{64}$' || true
}

# pids inside those containers (by cgroup path, which carries the container id); a dockerd
# killed without stopping its containers leaves them running, re-parented to init
container_pids() {  # container_pids id...
  [ $# -gt 0 ] || return 0
  local pat; pat=$(printf '%s|' "$@"); pat=${pat%|}
  grep -lE "$pat" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 | grep -v "^$$\$" || true
}

down() {
  local n pid i ids
  ids=$(our_container_ids)
  # 1. the processes in our containers (everything is thrown away: no graceful stop)
  kill_pids KILL $(container_pids $ids)
  # 2. the dockerds (by pidfile, checked against their command line), then whatever else was
  #    started from our paths (their containerds and shims, the registry), gently first
  for n in "${NODES[@]}"; do
    pid=$(cat "$STATE/$n/dockerd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$STATE/$n/"; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for i in $(seq 1 30); do
    [ -z "$(our_pids | head -1)" ] && break
    [ "$i" = 10 ] && kill_pids TERM $(our_pids)
    sleep 0.5
  done
  kill_pids KILL $(our_pids)
  ids=$(our_container_ids)  # again: a node may have started a container meanwhile
  kill_pids KILL $(container_pids $ids)
  sleep 0.5
  # 3. mounts below our folders (overlay layers, netns bind mounts, shm), deepest first
  if command -v findmnt >/dev/null; then
    { findmnt -rn -o TARGET | grep -E "^($STATE|$RUN)(/|$)" || true; } | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  # 4. the (now empty) cgroups of our containers
  if [ -n "$ids" ]; then
    local names=() first=1
    for i in $ids; do
      [ $first = 1 ] || names+=(-o); first=0; names+=(-name "*$i*")
    done
    find /sys/fs/cgroup -depth -type d \( "${names[@]}" \) -exec rmdir {} \; 2>/dev/null || true
  fi
  # 5. network: namespaces (their veth ends go with them), bridge, FORWARD rule
  for n in "${NODES[@]}"; do
    ip netns pids "kmn-$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "kmn-$n" 2>/dev/null || true
    ip link del "kmn-$n-h" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  while iptables -D FORWARD -i "$BR" -o "$BR" -m comment --comment "$FWD_COMMENT" -j ACCEPT 2>/dev/null; do :; done
  # 6. files (and the login registry's CA, which every dockerd here reads from certs.d)
  rm -rf "$STATE" "$RUN" "/etc/docker/certs.d/$HOST_IP:$AUTH_REG_PORT"
}

wait_for() {  # wait_for SECONDS DESCRIPTION command...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

start_node() {
  local n=$1 ns=kmn-$1 ip=${NODE_IP[$1]}
  mkdir -p "$STATE/$n" "$RUN/$n"
  ip netns add "$ns"
  ip link add "kmn-$n-h" type veth peer name eth0 netns "$ns"
  ip link set "kmn-$n-h" master "$BR" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  # nsenter (not `ip netns exec`, which remounts /sys and hides cgroups); own UTS for the name
  nohup nsenter --net="/var/run/netns/$ns" unshare --uts sh -c "hostname $n; exec /usr/sbin/dockerd \
      --data-root $STATE/$n/data --exec-root $RUN/$n --pidfile $STATE/$n/dockerd.pid \
      --host unix://$(sock "$n") --insecure-registry $REGISTRY --log-level warn" \
      >"$STATE/$n/dockerd.log" 2>&1 9>&- &
}

up() {
  need_tools
  down
  if ip route | grep -q "^$PREFIX.0/24"; then
    log "$PREFIX.0/24 is already routed here by something else: set KEELSON_MN_PREFIX"; exit 1
  fi
  mkdir -p "$STATE" "$RUN"
  ip link add "$BR" type bridge
  ip addr add "$HOST_IP/24" dev "$BR"
  ip link set "$BR" up
  # with br_netfilter loaded, bridged frames cross the host's FORWARD chain (policy DROP)
  iptables -I FORWARD 1 -i "$BR" -o "$BR" -m comment --comment "$FWD_COMMENT" -j ACCEPT

  # registry on the bridge's host side, storage in our state folder
  mkdir -p "$STATE/registry/data"
  cat >"$STATE/registry/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
YML
  nohup docker-registry serve "$STATE/registry/config.yml" >"$STATE/registry/registry.log" 2>&1 9>&- &
  echo $! >"$STATE/registry/pid"

  local n
  for n in "${NODES[@]}"; do start_node "$n"; done
  wait_for 60 registry curl -fsS "http://$REGISTRY/v2/" || { cat "$STATE/registry/registry.log" >&2; exit 1; }
  for n in "${NODES[@]}"; do
    wait_for 90 "dockerd $n" dk "$n" version || { tail -30 "$STATE/$n/dockerd.log" >&2; exit 1; }
  done

  dk m1 swarm init --advertise-addr "${NODE_IP[m1]}" --listen-addr "${NODE_IP[m1]}:2377" \
     --default-addr-pool 10.214.0.0/16 >/dev/null
  local token
  token=$(dk m1 swarm join-token -q worker)
  for n in w1 w2; do
    dk "$n" swarm join --token "$token" --advertise-addr "${NODE_IP[$n]}" \
       --listen-addr "${NODE_IP[$n]}:2377" "${NODE_IP[m1]}:2377" >/dev/null
  done
  ready3() { [ "$(dk m1 node ls --format '{{.Status}}' | grep -c Ready || true)" = 3 ]; }
  wait_for 90 "3 Ready nodes" ready3 || { dk m1 node ls >&2; exit 1; }

  # base image on the manager (where Keelson builds), taken from the main dockerd read-only;
  # made from Debian's busybox-static if that dockerd lacks it. Also pushed to our registry.
  if DOCKER_HOST=$MAIN_DOCKER_HOST docker image inspect busybox:latest >/dev/null 2>&1; then
    DOCKER_HOST=$MAIN_DOCKER_HOST docker save busybox:latest | dk m1 load -q >/dev/null
  else
    [ -x /bin/busybox ] || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }
    local root; root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
    cp /bin/busybox "$root/bin/busybox"
    for app in $("$root/bin/busybox" --list); do [ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    tar -C "$root" -c . | dk m1 import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' - busybox:latest >/dev/null
    rm -rf "$root"
  fi
  dk m1 tag busybox:latest "$REGISTRY/library/busybox:latest"
  dk m1 push -q "$REGISTRY/library/busybox:latest" >/dev/null
  log "ready: 3 nodes ($(dk m1 node ls --format '{{.Hostname}}' | sort | tr '\n' ' ')), registry $REGISTRY"
  env_lines
}

stop_node() {  # stop_node NODE: TERM its dockerd (found by pidfile, checked by command line)
  local n=$1 pid
  [ -n "${NODE_IP[$n]:-}" ] || { log "no node $n (nodes: ${NODES[*]})"; exit 2; }
  pid=$(cat "$STATE/$n/dockerd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$STATE/$n/"; then
    kill -TERM "$pid"
    wait_for 60 "dockerd $n to stop" sh -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  fi
  log "stopped dockerd of $n"
}

env_lines() {
  echo "MULTINODE_REGISTRY=$REGISTRY"
  echo "MULTINODE_AUTH_REGISTRY=$HOST_IP:$AUTH_REG_PORT"
  echo "MULTINODE_STATE=$STATE"
  local n
  for n in "${NODES[@]}"; do echo "MULTINODE_SOCK_${n^^}=unix://$(sock "$n")"; done
}

case "${1:-up}" in
  up) lock; up ;;
  down) lock; down; log "removed" ;;
  env) env_lines ;;
  stop) lock; stop_node "${2:?usage: $0 stop NODE}" ;;
  *) echo "usage: $0 up|down|env|stop NODE" >&2; exit 2 ;;
esac
