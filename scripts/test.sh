#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: installs SIA with its test
# dependencies into .venv, starts the services the tests need, then runs lint, types
# and every test. Idempotent: a second run reuses .venv.
#
# Services: scripts/services.sh installs (when missing) and starts redis-server; the
# tests that need it fail, rather than skip, when SIA_REQUIRE_SERVICES=1 (set here).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip
python -m pip install --quiet --disable-pip-version-check -e '.[test]'

echo "== services"
export "$(bash scripts/services.sh | tail -n 1)"
export SIA_REQUIRE_SERVICES=1

echo "== ruff"
ruff check sia tests scripts
echo "== mypy"
mypy sia
echo "== pytest"
python -m pytest -q "$@"
