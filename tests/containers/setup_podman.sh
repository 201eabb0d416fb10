#!/usr/bin/env bash
# Start a Docker-API-compatible container engine (Podman) for the container tests and build their image.
#
# On success prints shell `export` lines on stdout (AOB_TEST_DOCKER_URL, AOB_TEST_AGENT_IMAGE); everything else goes
# to stderr. On failure prints nothing on stdout and exits non-zero, so `eval "$(setup_podman.sh)"` exports nothing.
# Idempotent: a running service is reused, the image is rebuilt only when missing (its tarball is cached under
# ~/.cache/aob/, so a new machine re-imports it in a second instead of running debootstrap again).
set -euo pipefail

DIR=${AOB_PODMAN_DIR:-/tmp/aob-podman}
CACHE=${AOB_CACHE_DIR:-$HOME/.cache/aob}
IMAGE=localhost/aob-agent:test
TARBALL=$CACHE/aob-agent-rootfs.tar
SOCK=$DIR/podman.sock

log() { echo "setup_podman: $*" >&2; }

mkdir -p "$DIR" "$CACHE"
exec 3>&1 1>&2 # keep stdout for the export lines only

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
  log "installing ${need[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# crun fails on this machine's cgroup layout; runc with cgroupfs works.
cat >"$DIR/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$DIR/containers.conf
podman_() { podman --root "$DIR/store" --runroot "$DIR/run" "$@"; }

# A service whose working directory was deleted (it was started from a checkout since removed) answers pings but
# cannot start containers: conmon fails to get its working directory. Replace it.
if [[ -f "$DIR/service.pid" ]] && [[ "$(readlink "/proc/$(cat "$DIR/service.pid")/cwd" 2>/dev/null)" == *"(deleted)" ]]; then
  log "replacing the podman service: its working directory is gone"
  kill "$(cat "$DIR/service.pid")" 2>/dev/null || true
  sleep 1
fi

if ! curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
  log "starting podman system service on $SOCK"
  rm -f "$SOCK"
  # fd 3 is the caller's stdout (a command substitution's pipe): the service must not keep it open, or the
  # caller's `$(...)` would wait for the service to exit. It runs from / so that no checkout it was started from
  # can take its working directory away.
  (cd / && exec nohup podman --root "$DIR/store" --runroot "$DIR/run" system service --time=0 "unix://$SOCK" \
    >"$DIR/service.log" 2>&1 </dev/null 3>&-) &
  echo $! >"$DIR/service.pid"
  for _ in $(seq 1 50); do
    curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null || { log "the service does not answer"; exit 1; }
fi

if ! podman_ image exists "$IMAGE"; then
  if [[ ! -s $TARBALL ]]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$DIR/rootfs
    rm -rf "$rootfs"
    log "debootstrap bookworm from $mirror (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$DIR/debootstrap.log" 2>&1
    # The full python3 (not -minimal): the project's dependencies, mounted from the host's venv, need its stdlib.
    chroot "$rootfs" apt-get install -y -qq --no-install-recommends python3 >>"$DIR/debootstrap.log" 2>&1
    chroot "$rootfs" apt-get clean
    tar -C "$rootfs" -cf "$TARBALL.partial" .
    mv "$TARBALL.partial" "$TARBALL"
    rm -rf "$rootfs"
  fi
  log "importing $IMAGE from $TARBALL"
  podman_ import --change 'CMD ["python3"]' "$TARBALL" "$IMAGE" >/dev/null
fi

echo "export CONTAINERS_CONF=$DIR/containers.conf" >&3
echo "export AOB_TEST_DOCKER_URL=unix://$SOCK" >&3
echo "export AOB_TEST_AGENT_IMAGE=$IMAGE" >&3
log "ready: unix://$SOCK, image $IMAGE"
