#!/usr/bin/env bash
# Starts the FAKE Hyper-V host for packages/driver-hyperv's tests: Debian's OpenSSH server (sshd)
# on 127.0.0.1:${NOVA_LFS_FAKE_HYPERV_PORT:-12222}, key-only, with its own host key, client key and
# config under /var/lib/nova-lfs/fake-hyperv. Its ForceCommand runs the FAKE PowerShell emulator
# (packages/driver-hyperv/fake-host/fake-hyperv-powershell.mjs, /usr/bin/node), which answers the
# driver's fixed scripts from a JSON state directory. This is NOT Hyper-V and NOT PowerShell: it
# proves the driver's command building, quoting, parsing, error handling and SSH transport only.
# Idempotent: does nothing when the FAKE sshd already runs with this config. Prints host:port.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
port="${NOVA_LFS_FAKE_HYPERV_PORT:-12222}"
base=/var/lib/nova-lfs/fake-hyperv
log=/var/log/nova-lfs/fake-hyperv-sshd.log
emulator="$repo/packages/driver-hyperv/fake-host/fake-hyperv-powershell.mjs"
node_bin="$(command -v node || true)"
[ -x /usr/bin/node ] && node_bin=/usr/bin/node
[ -x /usr/sbin/sshd ] || { echo "start-fake-hyperv-sshd: /usr/sbin/sshd is missing (bash scripts/install-system.sh installs openssh-server)" >&2; exit 1; }
[ -n "$node_bin" ] || { echo "start-fake-hyperv-sshd: node is missing" >&2; exit 1; }
[ -f "$emulator" ] || { echo "start-fake-hyperv-sshd: FAKE emulator $emulator is missing" >&2; exit 1; }
mkdir -p "$base/state" /var/log/nova-lfs /run/sshd
chmod 700 "$base"
[ -f "$base/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C 'nova-lfs FAKE hyperv host key' -f "$base/ssh_host_ed25519_key"
[ -f "$base/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C 'nova-lfs FAKE hyperv client' -f "$base/client_key"
cp "$base/client_key.pub" "$base/authorized_keys"
chmod 600 "$base/authorized_keys" "$base/client_key" "$base/ssh_host_ed25519_key"
config="$(cat <<CONF
# FAKE Hyper-V host (nova-lfs tests): loopback, key-only, every session runs the FAKE emulator.
ListenAddress 127.0.0.1
Port $port
HostKey $base/ssh_host_ed25519_key
PidFile $base/sshd.pid
AuthorizedKeysFile $base/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
UsePAM no
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PermitUserEnvironment no
MaxSessions 32
MaxStartups 64:30:128
Subsystem sftp /usr/lib/openssh/sftp-server
SetEnv NOVA_LFS_FAKE_HYPERV_STATE=$base/state
ForceCommand $node_bin $emulator
CONF
)"
running() { [ -f "$base/sshd.pid" ] && kill -0 "$(cat "$base/sshd.pid")" 2>/dev/null; }
if running && [ -f "$base/sshd_config" ] && [ "$(cat "$base/sshd_config")" = "$config" ]; then
  echo "127.0.0.1:$port"; exit 0
fi
if running; then
  pid="$(cat "$base/sshd.pid")"; kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
fi
printf '%s\n' "$config" >"$base/sshd_config"
/usr/sbin/sshd -t -f "$base/sshd_config"
/usr/sbin/sshd -f "$base/sshd_config" -E "$log"
for _ in $(seq 1 40); do
  if running && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "127.0.0.1:$port"; exit 0; fi
  sleep 0.25
done
echo "start-fake-hyperv-sshd: sshd did not answer on 127.0.0.1:$port (log: $log)" >&2
exit 1
