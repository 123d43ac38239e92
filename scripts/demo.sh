#!/usr/bin/env bash
# One command for a first look: install, generate a day of synthetic pump.fun data into the
# embedded warehouse (SQLite under $PUMP_DATA_DIR, default ~/.pump_orchestration) and train a
# first model through Dagster. The checkout is the Dagster instance (DAGSTER_HOME=$PWD, so the
# top-level dagster.yaml is the one in use); runs are stored under ./.dagster_home.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME=$PWD
.venv/bin/pump-orchestration demo "$@"
