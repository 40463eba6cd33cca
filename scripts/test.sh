#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: installs SIA with its test
# dependencies into .venv, starts the services the tests need, then runs lint, types
# and every test. Idempotent: a second run reuses .venv.
#
# Services: scripts/services.sh installs (when missing) and starts Redis, Kafka and
# PostgreSQL, checks Debian's Chromium (the console's browser tests), and prints their
# SIA_TEST_* variables, exported here; the tests that need
# them fail, rather than skip, when SIA_REQUIRE_SERVICES=1 (set here).
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
services_env="$(bash scripts/services.sh)"
while IFS= read -r line; do
  # shellcheck disable=SC2163  # exports the NAME=value the line holds
  case "$line" in
    SIA_TEST_*=*) export "$line" ;;
  esac
done <<<"$services_env"
export SIA_REQUIRE_SERVICES=1

echo "== ruff"
ruff check sia tests scripts
echo "== mypy"
mypy sia
echo "== import layers"
lint-imports --no-cache
echo "== docs"
python scripts/gen_docs.py --check
# not -q: mkdocs 1.6 then hides the warnings --strict counts, and passes a broken link
NO_MKDOCS_2_WARNING=1 mkdocs build --strict -d build/site
echo "== pytest"
python -m pytest -q "$@"
