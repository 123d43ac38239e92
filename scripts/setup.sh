#!/usr/bin/env bash
# Create .venv and install the project with its test extras (idempotent). A re-run skips pip
# while setup.py is unchanged since the last install: the stamp in .venv holds its checksum.
set -euo pipefail
# The physical checkout (symlinks resolved): the editable install must point at the real files.
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
STAMP=.venv/.pump_orchestration_setup
WANT=$(sha256sum setup.py | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! .venv/bin/python -c 'import pump_orchestration' 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$WANT" > "$STAMP"
fi
