#!/usr/bin/env bash
# Prepares this machine for opthub-runner: Docker (Debian's docker.io) running,
# the static busybox the example images are built from, and a virtualenv in
# .venv with the package and its test tools. Safe to run again: each step is
# skipped when already done. Needs root (or sudo) only to install packages.
#
# --venv-only prepares .venv alone: no system package, no Docker, no MiniStack
# (what `scripts/test.sh --quick` needs).
set -euo pipefail
cd "$(dirname "$0")/.."

venv_only=false
case "${1:-}" in
  --venv-only) venv_only=true ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--venv-only]" >&2; exit 2 ;;
esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

prepare_venv() {
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "setup: installing the package and its test tools into .venv"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[test]'
    touch .venv/.installed
  fi
}

if $venv_only; then
  prepare_venv
  exit 0
fi

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
# The example images copy /bin/busybox into an empty image: it must be the static build.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need_apt+=(busybox-static); fi
# The status page's test loads it in a real headless browser.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# crun: the second runtime benchmarks/throughput.py and scripts/second-dockerd.sh measure.
command -v crun >/dev/null 2>&1 || need_apt+=(crun)
# mmdebstrap: the local Python base the runner image (Dockerfile) is built from in the suite.
command -v mmdebstrap >/dev/null 2>&1 || need_apt+=(mmdebstrap)
# promtool (in Debian's prometheus): checks and tests the alert rules in deploy/prometheus.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  as_root sh -c 'nohup dockerd >/var/log/dockerd-opthub.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/dockerd-opthub.log" >&2; exit 1; }
fi

prepare_venv

# MiniStack, a second local AWS emulator written independently of moto: the queue and
# store contracts, one end-to-end run of each queue kind and benchmarks/soak.py also
# run against it. It pins its own botocore, so it gets its own environment and runs
# as a server from there (tests/support/emulators.py). The version is pinned here.
MINISTACK_VERSION=1.5.33
if ! .venv-ministack/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('ministack') != '$MINISTACK_VERSION')" 2>/dev/null; then
  echo "setup: installing MiniStack $MINISTACK_VERSION into .venv-ministack"
  python3 -m venv .venv-ministack
  .venv-ministack/bin/pip install -q "ministack==$MINISTACK_VERSION" >/dev/null
fi
