#!/usr/bin/env bash
# Quick start, command 1: the evaluator and the scorer on an embedded local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/opthub-runner demo "$@"
