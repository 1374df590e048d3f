#!/usr/bin/env bash
# Stops the second libvirt host started by start-libvirt-second.sh, by its PID files (its guests
# are destroyed first, so no QEMU is left running in its namespace). Idempotent.
set -euo pipefail
data="${NOVA_LFS_LIBVIRT2_DIR:-/var/lib/nova-lfs/libvirt-second}"
uri="qemu+unix:///system?socket=$data/sock/libvirt-sock"
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive "$data/libvirtd.pid"; then
  for dom in $(virsh -c "$uri" list --name 2>/dev/null); do virsh -c "$uri" destroy "$dom" >/dev/null || true; done
fi
for p in libvirtd virtlogd; do
  if alive "$data/$p.pid"; then kill "$(cat "$data/$p.pid")"; fi
done
for _ in $(seq 1 50); do
  alive "$data/libvirtd.pid" || alive "$data/virtlogd.pid" || exit 0
  sleep 0.2
done
echo "stop-libvirt-second: still running after 10 s" >&2
exit 1
