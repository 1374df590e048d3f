#!/usr/bin/env bash
# Installs the workspace's dependencies (pnpm install) and makes sure the libvirt binding
# (@unraid/libvirt, a native addon and an optional dependency of @nova-lfs/driver-kvm) is built
# whenever Debian's libvirt-dev is present. pnpm builds the addon only at install time and leaves
# it unbuilt, silently, when libvirt-dev is missing then (as after `bash scripts/demo.sh` on a fresh
# machine); a later install sees nothing to do. So this rebuilds the binding when it does not load
# but could be built now. Used by demo.sh and test.sh, so either may run first.
set -euo pipefail
# native addons build from source: no prebuilt-binary downloads from outside the package registries
export npm_config_build_from_source=true
cd "$(dirname "$0")/.."
command -v pnpm >/dev/null || npm install -g pnpm@10 >/dev/null
if [ -f pnpm-lock.yaml ]; then pnpm install --frozen-lockfile; else pnpm install; fi

binding_loads() { # prints the load error and fails when @unraid/libvirt or its addon does not load
  (cd packages/driver-kvm && node --input-type=module -e "
    try {
      const m = await import('@unraid/libvirt');
      new m.Hypervisor({ uri: 'test:///default' }); // loads the native addon; connects nowhere
    } catch (e) {
      console.error(String(e?.message ?? e).split('\n')[0]);
      process.exit(1);
    }")
}
have_libvirt_dev() { pkg-config --exists libvirt 2>/dev/null || [ -f /usr/include/libvirt/libvirt.h ]; }

if err="$(binding_loads 2>&1)"; then exit 0; fi
if ! have_libvirt_dev; then
  echo "install-workspace: the libvirt binding did not load ($err); the KVM driver needs Debian's libvirt-dev (bash scripts/install-system.sh, then this script again)" >&2
  exit 0
fi
echo "install-workspace: the libvirt binding did not load ($err); rebuilding it now that libvirt-dev is installed"
pnpm --filter @nova-lfs/driver-kvm rebuild @unraid/libvirt
if ! err="$(binding_loads 2>&1)"; then
  echo "install-workspace: the libvirt binding still does not load after pnpm rebuild: $err" >&2
  exit 1
fi
