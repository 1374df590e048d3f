#!/usr/bin/env bash
# Installs the workspace's dependencies (pnpm install). Used by demo.sh and test.sh, so either may
# run first. No native addon is built for the KVM driver: its libvirt binding (@nova-lfs/libvirt)
# uses koffi, whose prebuilt binary ships inside its npm package, and needs only Debian's libvirt0
# (libvirt.so.0) at run time.
set -euo pipefail
# native addons build from source: no prebuilt-binary downloads from outside the package registries
export npm_config_build_from_source=true
cd "$(dirname "$0")/.."
command -v pnpm >/dev/null || npm install -g pnpm@10 >/dev/null
if [ -f pnpm-lock.yaml ]; then pnpm install --frozen-lockfile; else pnpm install; fi
