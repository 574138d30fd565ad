#!/usr/bin/env bash
# Set up everything the product and its tests need, from the repository's own files. Re-running it installs
# nothing unless a requirements file changed (see make_venv), and the modes may run in any order.
#   scripts/setup.sh           the laptop / demo environment (.venv, Python 3.11: requirements-local.txt)
#   scripts/setup.sh --fast    what `scripts/test.sh --fast` needs: .venv with the test tools (requirements-dev.txt)
#   scripts/setup.sh --dev     plus Python 3.13, checkov, node packages and Chromium, for the whole suite
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_python.sh

case "${1:-}" in
  "") make_venv .venv 3.11 requirements-local.txt; exit 0 ;;
  --fast) make_venv .venv 3.11 requirements-dev.txt; exit 0 ;;
  --dev) ;;
  *) echo "usage: scripts/setup.sh [--fast | --dev]" >&2; exit 2 ;;
esac

make_venv .venv 3.11 requirements-dev.txt
make_venv .venv313 3.13 requirements-dev.txt
# checkov (the infra/ policy scan) pins many packages of its own, so it gets a venv of its own.
make_venv .venv-checkov 3.11 requirements-checkov.txt

for dir in tests/kusto tests/card; do
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

if [ -d tests/card ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's chromium package for the card rendering test" >&2
    exit 1
  fi
fi
