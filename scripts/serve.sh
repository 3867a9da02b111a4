#!/usr/bin/env bash
# Installs the project into .venv and serves FHIR R4 at http://127.0.0.1:8080/fhir on the
# embedded SQLite store (./data). Extra arguments go to `dmp-fhir serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/dmp-fhir serve "$@"
