#!/usr/bin/env bash
# Installs the project with its test extras into .venv and runs lint + the whole test suite.
# The MongoDB lane runs against $MONGODB_URI when set, else against a mongoeco server (a
# MongoDB wire-protocol emulator needing Python 3.13) installed here into .venv-mongo.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

MONGOECO_REQ='mongoeco[wire]>=4.11,<5'

find_python313() {
  if [ -n "${MONGOECO_BASE_PYTHON:-}" ]; then echo "$MONGOECO_BASE_PYTHON"; return; fi
  if command -v python3.13 >/dev/null && python3.13 -V >/dev/null 2>&1; then
    command -v python3.13; return
  fi
  if command -v pyenv >/dev/null; then
    local v
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.|$)' | tail -1 || true)
    if [ -n "$v" ]; then echo "$(pyenv root)/versions/$v/bin/python3.13"; return; fi
  fi
  return 1
}

mongo_lane_setup() {
  if [ -x .venv-mongo/bin/python ] && .venv-mongo/bin/python -c "import mongoeco, bson" 2>/dev/null; then
    return 0
  fi
  local py313
  py313=$(find_python313) || { echo "no Python 3.13 (pyenv install 3.13.0)"; return 1; }
  rm -rf .venv-mongo
  "$py313" -m venv .venv-mongo || return 1
  .venv-mongo/bin/python -m pip install -q --upgrade pip || return 1
  .venv-mongo/bin/python -m pip install -q "$MONGOECO_REQ" || return 1
}

if [ -z "${MONGODB_URI:-}" ]; then
  if ! mongo_lane_setup; then
    if [ "${CI:-}" = "true" ]; then
      echo "ERROR: CI must run the MongoDB lane, but the mongoeco environment (.venv-mongo," \
        "Python 3.13 + $MONGOECO_REQ) could not be made. Set MONGODB_URI or fix Python 3.13." >&2
      exit 1
    fi
    echo "WARNING: no mongoeco environment: the MongoDB lane will be SKIPPED (see pytest -ra)." >&2
  fi
fi

# The API pages are tested in a real browser: Debian's chromium and chromium-driver (never a
# browser downloaded by a Python package). Without them those tests skip, with the reason.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing chromium and chromium-driver (Debian) for the browser tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
      >/dev/null 2>&1 || echo "WARNING: chromium could not be installed: the browser tests will skip" >&2
  else
    echo "WARNING: no chromium/chromedriver: the browser tests will skip" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
