#!/usr/bin/env bash
# One command for a first look: install, generate a day of synthetic pump.fun data into the
# embedded warehouse (SQLite under $PUMP_DATA_DIR, default ~/.pump_orchestration) and train a
# first model through Dagster. Runs are recorded in $DAGSTER_HOME (default ./.dagster_home).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.dagster_home}
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
.venv/bin/pump-orchestration demo "$@"
echo
echo "Open the UI:  DAGSTER_HOME=$DAGSTER_HOME .venv/bin/dagster dev -w workspace.yaml   (then http://127.0.0.1:3000)"
