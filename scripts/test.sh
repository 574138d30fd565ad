#!/usr/bin/env bash
# The checks. Extra arguments go to pytest (e.g. `-x`, `-k card`, a test file).
#   scripts/test.sh           the whole check, as CI runs it: set up, lint, type-check, import cycles, and every
#                             test on Python 3.11 and 3.13
#   scripts/test.sh --fast    the edit loop: lint, type-check, import cycles, and the tests not marked `slow`,
#                             on Python 3.11 only (tests/README.md says what is slow)
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
if [ "${1:-}" = "--fast" ]; then
  fast=true
  shift
fi

static_checks() {
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  .venv/bin/mypy
  .venv/bin/python scripts/import_cycles.py
}

if $fast; then
  bash scripts/setup.sh --fast
  # The static checks run beside the tests (one core each); their output is printed after the tests', so the
  # two never interleave, and either failing fails the run.
  checks_log="$(mktemp)"
  trap 'rm -f "$checks_log"' EXIT
  static_checks >"$checks_log" 2>&1 &
  checks=$!
  echo "== pytest on Python 3.11, fast tier (-m 'not slow'); ruff, mypy and the import-cycle check beside it"
  tests_status=0
  .venv/bin/python -m pytest -m "not slow" "$@" || tests_status=$?
  checks_status=0
  wait "$checks" || checks_status=$?
  echo "== ruff, mypy, import cycles"
  cat "$checks_log"
  if [ "$checks_status" -ne 0 ]; then echo "static checks failed (exit $checks_status)" >&2; exit "$checks_status"; fi
  exit "$tests_status"
fi

bash scripts/setup.sh --dev
static_checks
echo "== pytest on Python 3.11"
.venv/bin/python -m pytest "$@"
echo "== pytest on Python 3.13"
.venv313/bin/python -m pytest "$@"
