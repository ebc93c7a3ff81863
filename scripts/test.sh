#!/usr/bin/env bash
# Quick start, command 2: lint, type-check and run the whole test suite (in three
# parts at once) against a real Docker daemon and a real moto server, then the demo and the
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
# Every other Python's tests need no Docker and no emulator: they run beside the
# whole suite (their venvs prepared there too), their output shown once it ends.
others_log=.test-pythons.log
scripts/test-pythons.sh --tests-only >"$others_log" 2>&1 &
others=$!
# The suite in three parts side by side, each a pytest session of its own (its
# own moto server and image tags): most of the suite's time is spent waiting on
# containers, runner processes and queues, not on the CPU. The parts are of about
# the same length (the fault tests, the end-to-end tests, the rest); the second
# Docker daemons some tests bring each have names of their own, so they may run
# in two parts at once. Each part's slowest tests are listed, to keep it short;
# the other parts' output is shown once the end-to-end tests (in front) are done.
daemons_log=.test-daemons.log
.venv/bin/pytest -q -p no:cacheprovider --durations=10 tests/faults >"$daemons_log" 2>&1 &
daemons=$!
inner_log=.test-inner.log
.venv/bin/pytest -q -p no:cacheprovider --durations=10 \
  tests/unit tests/contracts tests/emulator tests/docker >"$inner_log" 2>&1 &
inner=$!
suite=0
.venv/bin/pytest -q -p no:cacheprovider --durations=10 tests/e2e || suite=$?
inner_ok=true
wait "$inner" || inner_ok=false
cat "$inner_log"
daemons_ok=true
wait "$daemons" || daemons_ok=false
cat "$daemons_log"
others_ok=true
wait "$others" || others_ok=false
cat "$others_log"
$inner_ok || { echo "test: the unit, contract, emulator or Docker tests failed (above)" >&2; exit 1; }
$daemons_ok || { echo "test: the fault tests failed (above)" >&2; exit 1; }
$others_ok || { echo "test: the tests on another Python failed (above)" >&2; exit 1; }
[ "$suite" -eq 0 ] || exit "$suite"
# The demo on every other Python, after the suite: it builds the demo's images.
exec scripts/test-pythons.sh --demos-only
