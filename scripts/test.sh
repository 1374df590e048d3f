#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian 12 machine (root, Node.js 20),
# starts the services on loopback, builds, lints, typechecks and runs every test.
# With CI=true, a test suite whose engine is missing fails instead of skipping.
set -euo pipefail
# native addons build from source: no prebuilt-binary downloads from outside the package registries
export npm_config_build_from_source=true
cd "$(dirname "$0")/.."
bash scripts/install-system.sh
bash scripts/services/start-all.sh
export NOVA_LFS_PG_URL="${NOVA_LFS_PG_URL:-postgres://nova:nova@127.0.0.1:5432/nova_test}"
export NOVA_LFS_NATS_URL="${NOVA_LFS_NATS_URL:-nats://127.0.0.1:4222}"
bash scripts/install-workspace.sh
pnpm run build
pnpm run docs >/dev/null   # API docs from TSDoc must build (typedoc reads the built packages)
pnpm run lint
pnpm run typecheck
pnpm test
