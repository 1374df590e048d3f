#!/usr/bin/env bash
# Prints the path of Debian's cloud kernel (linux-image-cloud-amd64), used for direct kernel boot.
set -euo pipefail
k="$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$k" ] || { echo "find-guest-kernel: no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)" >&2; exit 1; }
echo "$k"
