#!/usr/bin/env bash
# The demo (README): a local single-node swarm + registry (started if absent), a git repo seeded
# with the bundled manifests/, and Keelson reconciling it.
#   bash scripts/demo.sh          # keelson run: the loop, HTTP on 127.0.0.1:9090 (Ctrl-C stops)
#   bash scripts/demo.sh once     # keelson sync: one pass, exit 0 when every stack converged
# The demo repo lives in $KEELSON_DEMO_DIR (default /var/lib/keelson-dev/demo): commit and push
# from its work/ folder and watch Keelson follow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/dev-env.sh
python3 -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v -i warning || true

DEMO=${KEELSON_DEMO_DIR:-/var/lib/keelson-dev/demo}
git_() { git -c user.name=keelson-demo -c user.email=demo@keelson.invalid "$@"; }
if [ ! -d "$DEMO/remote.git" ]; then
  mkdir -p "$DEMO"
  git init -q --bare -b main "$DEMO/remote.git"
  git clone -q "$DEMO/remote.git" "$DEMO/work" 2>/dev/null
  git_ -C "$DEMO/work" checkout -q -b main
  cp -r manifests "$DEMO/work/manifests"
  git_ -C "$DEMO/work" add -A
  git_ -C "$DEMO/work" commit -qm "Bundled demo manifests"
  git_ -C "$DEMO/work" push -q origin main
  echo "[demo] manifests repo: $DEMO/remote.git (work tree: $DEMO/work)" >&2
fi

export KEELSON_REPO="$DEMO/remote.git" KEELSON_REGISTRY=127.0.0.1:5000 \
       KEELSON_WORKDIR=/var/lib/keelson-dev/controller KEELSON_INTERVAL=${KEELSON_INTERVAL:-15s} \
       KEELSON_LISTEN=${KEELSON_LISTEN:-127.0.0.1:9090}

# python -m controller is the keelson command
if [ "${1:-run}" = once ]; then
  exec python3 -m controller sync
fi
echo "[demo] settings for keelson plan/validate in another shell:" >&2
echo "  export KEELSON_REPO=$KEELSON_REPO KEELSON_REGISTRY=$KEELSON_REGISTRY KEELSON_WORKDIR=$KEELSON_WORKDIR" >&2
# Run Keelson as a child and pass on the signals that stop this script, so that killing the
# script (not only Ctrl-C on the terminal's process group) stops Keelson too.
python3 -m controller run &
keelson_pid=$!
trap 'kill -TERM "$keelson_pid" 2>/dev/null || true' INT TERM HUP
wait "$keelson_pid" || true          # returns early when a trapped signal arrives
wait "$keelson_pid" 2>/dev/null || true
