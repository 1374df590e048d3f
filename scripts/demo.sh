#!/usr/bin/env bash
# The demo command: installs pnpm and the workspace's dependencies, then runs the embedded demo
# (examples/quickstart: an engine over fake hosts; no hypervisor needed).
set -euo pipefail
# native addons build from source: no prebuilt-binary downloads from outside the package registries
export npm_config_build_from_source=true
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "demo: Node.js 20 is required" >&2; exit 1; }
command -v pnpm >/dev/null || npm install -g pnpm@10 >/dev/null
if [ -f pnpm-lock.yaml ]; then pnpm install --frozen-lockfile; else pnpm install; fi
pnpm run demo
