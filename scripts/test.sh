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

if $fast; then bash scripts/setup.sh --fast; else bash scripts/setup.sh --dev; fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python scripts/import_cycles.py

if $fast; then
  echo "== pytest on Python 3.11, fast tier (-m 'not slow')"
  .venv/bin/python -m pytest -m "not slow" "$@"
  exit 0
fi
echo "== pytest on Python 3.11"
.venv/bin/python -m pytest "$@"
echo "== pytest on Python 3.13"
.venv313/bin/python -m pytest "$@"
