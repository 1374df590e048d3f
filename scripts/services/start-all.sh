#!/usr/bin/env bash
# Starts every service the tests use (loopback only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/start-docker.sh"
bash "$here/start-libvirt.sh"
bash "$here/start-libvirt-second.sh"
bash "$here/start-postgres.sh" >/dev/null
bash "$here/start-nats.sh"
bash "$here/start-slapd.sh" >/dev/null
bash "$here/start-fake-hyperv-sshd.sh" >/dev/null
