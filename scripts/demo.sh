#!/usr/bin/env bash
# The demo command: installs pnpm and the workspace's dependencies, then runs the embedded demo
# (examples/quickstart: an engine over fake hosts; no hypervisor needed).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "demo: Node.js 20 is required" >&2; exit 1; }
bash scripts/install-workspace.sh
pnpm run demo
