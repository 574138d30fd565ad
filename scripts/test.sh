#!/usr/bin/env bash
# The whole check, as CI runs it: set up, lint, type-check, and run every test on Python 3.11 and 3.13.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "== pytest on Python 3.11"
.venv/bin/python -m pytest
echo "== pytest on Python 3.13"
.venv313/bin/python -m pytest
