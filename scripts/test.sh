#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: installs SIA with its test
# dependencies into .venv, starts the services the tests need, then runs lint, types
# and every test. Idempotent: a second run reuses .venv.
#
# Services: the embedded core (this release) needs none - events, engine, SQLite.
# Kafka, Redis and PostgreSQL arrive with the scale-out mode and will be installed and
# started from here (scripts/services.sh) when their tests exist.
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

echo "== ruff"
ruff check sia tests scripts
echo "== mypy"
mypy sia
echo "== pytest"
python -m pytest -q "$@"
