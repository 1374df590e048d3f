#!/usr/bin/env bash
# stop-dom0.sh: stops the nested Xen QEMU started by start-dom0.sh, by its PID file only.
set -euo pipefail
dir="${NOVA_LFS_XEN_DIR:-/var/lib/nova-lfs/xen}"
pidfile="$dir/qemu.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null && grep -q qemu-system "/proc/$pid/cmdline" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    # QEMU is not our child (it daemonized): its exit shows only as the PID going away
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
fi
rm -f "$pidfile"
