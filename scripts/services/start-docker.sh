#!/usr/bin/env bash
# Starts dockerd on its unix socket only: no default bridge, no iptables (no private-range addresses).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
mkdir -p /var/log/nova-lfs
# a pid file left by a killed dockerd whose pid now belongs to another process makes dockerd refuse
if [ -f /var/run/docker.pid ]; then
  old="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [ -z "$old" ] || [ "$(cat "/proc/$old/comm" 2>/dev/null || true)" != dockerd ]; then rm -f /var/run/docker.pid; fi
fi
nohup dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false \
  >/var/log/nova-lfs/dockerd.log 2>&1 &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
tail -20 /var/log/nova-lfs/dockerd.log >&2
echo "start-docker: dockerd did not answer within 60 s (log: /var/log/nova-lfs/dockerd.log)" >&2
exit 1
