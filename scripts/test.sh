#!/usr/bin/env bash
# Quick start, command 2: lint, type-check and run the whole test suite
# against a real Docker daemon and a real moto server, then the demo and a fast
# subset on every other supported Python (scripts/test-pythons.sh). Arguments,
# if any, go to pytest alone (the development loop).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check opthub_runner_admin tests benchmarks
.venv/bin/ruff format --check opthub_runner_admin tests benchmarks
.venv/bin/mypy
if [ $# -gt 0 ]; then exec .venv/bin/pytest -q -p no:cacheprovider "$@"; fi
.venv/bin/pytest -q -p no:cacheprovider --durations=15  # the slowest, to keep the suite short
# The demo and a fast subset on every other Python the package claims.
exec scripts/test-pythons.sh
