#!/usr/bin/env bash
# A second Docker daemon beside the host's own, for benchmarks and the scale-out
# test: its own socket, data root, exec root, pid file, cgroup parent and bridge,
# with Debian's crun registered as runtime "crun". It never touches the first
# daemon: it is NOT started with --bridge=none (that deleted the first daemon's
# docker0 once) and adds no iptables rules. Needs root. Set
# OPTHUB_BENCH_HIDE_UNIFIED=0 to leave the cgroup2 mount visible to it (crun then
# refuses to create containers on a hybrid host such as this one).
#
#   scripts/second-dockerd.sh start   # prints the DOCKER_HOST to use
#   scripts/second-dockerd.sh stop    # then checks the first daemon still runs containers
#
# OPTHUB_BENCH_STATE, OPTHUB_BENCH_DATA, OPTHUB_BENCH_BRIDGE and OPTHUB_BENCH_SUBNET
# (the bridge's address, a /24) let the tests run their own beside the benchmark's.
# OPTHUB_BENCH_CGROUP_PARENT (default /<state folder's name>) is where its containers'
# cgroups go; set it empty for Docker's own default, as on a fresh machine (the
# runner reads a container's peak memory there).
set -euo pipefail

STATE=${OPTHUB_BENCH_STATE:-/run/opthub-bench}
DATA=${OPTHUB_BENCH_DATA:-/var/lib/opthub-bench}
BRIDGE=${OPTHUB_BENCH_BRIDGE:-obr0}
SUBNET=${OPTHUB_BENCH_SUBNET:-172.31.250.1/24}
CGROUP_PARENT=${OPTHUB_BENCH_CGROUP_PARENT-/$(basename "$STATE")}
SOCKET="unix://$STATE/docker.sock"

start() {
  mkdir -p "$STATE" "$DATA"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add name "$BRIDGE" type bridge
    ip addr add "$SUBNET" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  local runtime=()
  if [ -x /usr/bin/crun ]; then runtime=(--add-runtime crun=/usr/bin/crun); fi
  # crun refuses a hybrid cgroup host whose cgroup2 side (/sys/fs/cgroup/unified)
  # holds a controller ("cgroups in hybrid mode not supported"). In a private
  # mount namespace without that mount, crun (and runc) see plain cgroup v1; the
  # host's mounts, and so the first daemon, are untouched.
  local parent=()
  if [ -n "$CGROUP_PARENT" ]; then parent=(--cgroup-parent "$CGROUP_PARENT"); fi
  local launcher=()
  if [ "${OPTHUB_BENCH_HIDE_UNIFIED:-1}" = 1 ] && mountpoint -q /sys/fs/cgroup/unified; then
    launcher=(unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"')
  fi
  nohup "${launcher[@]}" dockerd \
    -H "$SOCKET" --pidfile "$STATE/dockerd.pid" \
    --data-root "$DATA" --exec-root "$STATE/exec" \
    --bridge "$BRIDGE" --iptables=false --ip6tables=false --ip-masq=false \
    "${parent[@]}" "${runtime[@]}" \
    >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    DOCKER_HOST=$SOCKET docker info >/dev/null 2>&1 && { echo "$SOCKET"; return 0; }
    sleep 1
  done
  echo "second dockerd did not start; see $STATE/dockerd.log" >&2
  return 1
}

stop() {
  if [ -f "$STATE/dockerd.pid" ]; then
    local pid
    pid=$(cat "$STATE/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
  # The first daemon must be unharmed: it still has its bridge and runs containers.
  ip link show docker0 >/dev/null
  # With one of the suite's busybox images (not every opthub-test image holds busybox).
  local image images
  images=$(docker images --format '{{.Repository}}:{{.Tag}}' 'opthub-test/*' | head -10)
  if [ -n "$images" ]; then
    for image in $images; do
      if docker run --rm --entrypoint /bin/busybox "$image" true 2>/dev/null; then
        echo "first daemon still runs containers"
        return 0
      fi
    done
  fi
  # No busybox image to try (another user removed them): the first daemon must answer at least.
  docker info >/dev/null && echo "first daemon answers"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
