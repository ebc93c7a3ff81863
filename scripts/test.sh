#!/usr/bin/env bash
# Quick start, command 2: lint, type-check and run the whole test suite
# against a real Docker daemon and a real moto server, then the demo and the
# tests that need neither on every other supported Python
# (scripts/test-pythons.sh). Arguments, if any, go to pytest alone (the
# development loop).
#
# --quick: the same lint and type checks, then only the tests that need no
# Docker daemon and no AWS emulator (pytest -m "not docker and not emulator";
# the markers come from the fixtures each test uses, see tests/conftest.py).
# It prepares .venv alone and needs Docker neither installed nor running.
# Further arguments go to that pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
if [ "${1:-}" = "--quick" ]; then
  quick=true
  shift
fi
if $quick; then scripts/setup.sh --venv-only; else scripts/setup.sh; fi
.venv/bin/ruff check opthub_runner_admin tests benchmarks
.venv/bin/ruff format --check opthub_runner_admin tests benchmarks
.venv/bin/mypy
if $quick; then
  exec .venv/bin/pytest -q -p no:cacheprovider -m "not docker and not emulator" "$@"
fi
if [ $# -gt 0 ]; then exec .venv/bin/pytest -q -p no:cacheprovider "$@"; fi
.venv/bin/pytest -q -p no:cacheprovider --durations=15  # the slowest, to keep the suite short
# The demo and the tests that need no Docker and no emulator, on every other Python.
exec scripts/test-pythons.sh
