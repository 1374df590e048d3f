#!/usr/bin/env bash
# Starts a NATS server with JetStream on 127.0.0.1:4222.
set -euo pipefail
port_open() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
if port_open; then exit 0; fi
mkdir -p /var/log/nova-lfs /var/lib/nova-lfs/nats
nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nova-lfs/nats >/var/log/nova-lfs/nats.log 2>&1 &
for _ in $(seq 1 60); do
  if port_open; then exit 0; fi
  sleep 0.5
done
echo "start-nats: nats-server did not listen on 127.0.0.1:4222 within 30 s (log: /var/log/nova-lfs/nats.log)" >&2
exit 1
