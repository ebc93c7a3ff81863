#!/usr/bin/env bash
# Every Python the package claims (pyproject's requires-python), proven: for each
# CPython from the oldest claimed to the newest this machine has (pyenv's
# versions, else python3.X on PATH), a fresh venv in .venv-pythons/3.X with the
# package and its test tools, then the README's demo (both modes through the
# real CLI, on Docker and moto) and every test that needs neither Docker nor an
# AWS emulator (pytest -m "not docker and not emulator", the markers read from
# each test's fixtures). A traceback or an "Exception ignored" line anywhere in
# the demo's output, or an unraisable exception inside a test, fails the run.
# The whole suite runs on .venv's Python, which is skipped here unless --all.
# --tests-only runs the tests alone and --demos-only the demos alone: the tests
# need neither Docker nor an emulator, so scripts/test.sh runs them beside the
# whole suite, and the demos after it.
set -euo pipefail
cd "$(dirname "$0")/.."

all=false
run_tests=true
run_demos=true
for arg in "$@"; do
  case $arg in
    --all) all=true ;;
    --tests-only) run_demos=false ;;
    --demos-only) run_tests=false ;;
    *) echo "test-pythons: unknown argument $arg (--all, --tests-only, --demos-only)" >&2; exit 2 ;;
  esac
done

OLDEST_MINOR=10   # requires-python = ">=3.10": keep the two in step
NEWEST_MINOR=13   # and "<3.14": the newest version CI has proven

find_python() {  # prints the interpreter for 3.$1, or nothing
  local minor=$1 root candidate
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    candidate=$(ls -d "$root"/versions/3."$minor".*/bin/python3 2>/dev/null | sort -V | tail -1 || true)
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return; fi
  fi
  candidate=$(command -v "python3.$minor" 2>/dev/null || true)
  if [ -n "$candidate" ] && "$candidate" -c '' >/dev/null 2>&1; then echo "$candidate"; fi
}

# The whole suite (scripts/test.sh) already ran on .venv's Python, demo included
# (tests/e2e/test_demo_cli.py): that version is not run again here.
suite_minor=$(.venv/bin/python -c 'import sys; print(sys.version_info.minor)' 2>/dev/null || echo none)

prepare() {  # a venv for 3.$1 with the package and its test tools, from $2
  local venv=.venv-pythons/3.$1
  if [ ! -x "$venv/bin/python" ]; then "$2" -m venv "$venv"; fi
  if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    "$venv/bin/pip" install -q -e '.[test]'
    touch "$venv/.installed"
  fi
}

# Which versions run, then their venvs prepared side by side (mostly waiting on
# downloads), then each version's checks one after the other.
minors=()
skipped=()
for minor in $(seq "$OLDEST_MINOR" "$NEWEST_MINOR"); do
  if [ "$minor" = "$suite_minor" ] && ! $all; then
    skipped+=("3.$minor(whole-suite)")
    continue
  fi
  python=$(find_python "$minor")
  if [ -z "$python" ]; then
    if [ "$minor" = "$OLDEST_MINOR" ]; then
      echo "test-pythons: Python 3.$minor (the oldest claimed) is not on this machine" >&2
      exit 1
    fi
    echo "test-pythons: Python 3.$minor is not on this machine; skipped"
    continue
  fi
  echo "test-pythons: $("$python" --version) in .venv-pythons/3.$minor"
  prepare "$minor" "$python" > ".venv-pythons-3.$minor.log" 2>&1 &
  minors+=("$minor")
done
for minor in "${minors[@]}"; do
  if ! wait -n; then
    cat .venv-pythons-3.*.log >&2
    echo "test-pythons: preparing a venv failed (see above)" >&2
    exit 1
  fi
done
rm -f .venv-pythons-3.*.log

for minor in "${minors[@]}"; do
  venv=.venv-pythons/3.$minor
  echo "test-pythons: Python 3.$minor"
  if $run_demos; then
    log=$(mktemp)
    if ! "$venv/bin/opthub-runner" demo >"$log" 2>&1; then
      cat "$log"; echo "test-pythons: the demo failed on Python 3.$minor" >&2; exit 1
    fi
    if grep -nE 'Traceback|Exception ignored' "$log"; then
      echo "test-pythons: the demo printed a traceback on Python 3.$minor" >&2; exit 1
    fi
    rm -f "$log"
  fi

  # What needs Docker or an emulator ran once in the whole suite; the demo runs
  # both modes on them here.
  if $run_tests; then
    "$venv/bin/python" -m pytest -q -p no:cacheprovider \
      -W error::pytest.PytestUnraisableExceptionWarning \
      -W error::pytest.PytestUnhandledThreadExceptionWarning \
      -m "not docker and not emulator"
  fi
done
echo "test-pythons: $($run_demos && echo "demo ")$($run_tests && echo "tests ")clean on Python ${minors[*]/#/3.} ${skipped[*]}"
