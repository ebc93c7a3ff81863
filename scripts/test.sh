#!/usr/bin/env bash
# Quick start, command 2: lint, type-check and run the whole test suite
# against a real Docker daemon and a real moto server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check opthub_runner_admin tests benchmarks
.venv/bin/ruff format --check opthub_runner_admin tests benchmarks
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
