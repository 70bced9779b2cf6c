#!/usr/bin/env bash
# The test command (README): installs what is missing, starts dockerd + swarm + registry,
# installs Keelson with its test extras, then runs the whole suite (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/dev-env.sh
python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -i 'warning' || true
python3 -m pytest -p no:cacheprovider -q "$@"
