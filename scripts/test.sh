#!/usr/bin/env bash
# The test command (README): installs what is missing, starts dockerd + swarm + registry,
# installs Keelson with its test extras, then runs the whole suite:
#   1. unit tests (pure, fast);
#   2. at once: the integration tests on the real swarm (pytest-xdist workers: every test uses
#      its own stack names, so they share the engine safely) and the multi-node lab (its own
#      dockerds in network namespaces);
#   3. the e2e test (Keelson's image deployed with stack.yml);
#   4. last, the test that restarts the shared dockerd mid-pass.
# Extra arguments run pytest with them instead (e.g. `bash scripts/test.sh tests/unit`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/dev-env.sh
python3 -m pip install -q --disable-pip-version-check -e '.[test,sops]' 2>&1 | grep -v -i 'warning' || true
PYTEST=(python3 -m pytest -p no:cacheprovider -q)
if [ $# -gt 0 ]; then
  exec "${PYTEST[@]}" "$@"
fi
WORKERS=${KEELSON_TEST_WORKERS:-4}
LOGS=$(mktemp -d)
"${PYTEST[@]}" tests/unit
echo "== integration (-n $WORKERS) and multinode, at once"
set +e
"${PYTEST[@]}" -n "$WORKERS" --dist loadfile tests/integration \
  --deselect tests/integration/test_zz_dockerd_restart.py >"$LOGS/integration.log" 2>&1 &
integration=$!
"${PYTEST[@]}" tests/multinode >"$LOGS/multinode.log" 2>&1 &
multinode=$!
wait $integration; rc_integration=$?
wait $multinode; rc_multinode=$?
set -e
echo "-- integration (exit $rc_integration)"; cat "$LOGS/integration.log"
echo "-- multinode (exit $rc_multinode)"; cat "$LOGS/multinode.log"
rc_e2e=0; "${PYTEST[@]}" tests/e2e || rc_e2e=$?
rc_restart=0; "${PYTEST[@]}" tests/integration/test_zz_dockerd_restart.py || rc_restart=$?
echo "exit codes: integration=$rc_integration multinode=$rc_multinode e2e=$rc_e2e restart=$rc_restart"
[ "$rc_integration$rc_multinode$rc_e2e$rc_restart" = "0000" ]
