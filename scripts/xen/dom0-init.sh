#!/bin/sh
# /init of the test dom0 (packed by build-dom0-image.sh): loads the Xen modules, mounts the host's
# share (9p, at the same path as on the host), starts xenstored, xenconsoled and libvirtd (libxl
# driver, TCP 16509 for QEMU's hostfwd) and prints NOVA-LFS-DOM0-READY on the console.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
rm -rf /var/run && ln -s /run /var/run
hostname dom0
say() { echo "nova-dom0: $*" >/dev/hvc0 2>/dev/null || echo "nova-dom0: $*"; }
exec >/dev/hvc0 2>&1

share=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in nova.share=*) share="${arg#nova.share=}" ;; esac
done

while read -r ko; do insmod "$ko" || say "insmod $ko failed"; done </etc/modules.order
mount -t xenfs xenfs /proc/xen || say "xenfs mount failed"

ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || say "eth0 setup failed"

if [ -n "$share" ]; then
  mkdir -p "$share"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 novashare "$share" || say "9p mount of $share failed"
  mkdir -p "$share/console" "$share/log/libvirt/libxl"
  # libvirtd's and libxl's per-domain logs where the host can read them
  rm -rf /var/log/libvirt && ln -s "$share/log/libvirt" /var/log/libvirt
fi

mkdir -p /var/lib/xenstored /var/log/xen /var/lib/xen /run/xen /run/xenstored /var/lib/libvirt/libxl \
  /var/log/libvirt/libxl /run/libvirt /var/lib/libvirt/libxl/save
xenstored --pid-file /run/xenstored.pid || say "xenstored failed"
xen-init-dom0 || say "xen-init-dom0 failed"
logdir="${share:-/var/log/xen}/console"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir="$logdir" --timestamp=none || say "xenconsoled failed"
diag="${share:-/run}/dom0-diag.log"
libvirtd --listen >"${share:-/run}/dom0-libvirtd.log" 2>&1 &
say "NOVA-LFS-DOM0-READY"
# what the host cannot see otherwise (start-dom0.sh prints it when libvirtd does not answer)
(sleep 15; { ps; ip addr; netstat -tln; ls -l /dev/xen /proc/xen; cat /var/log/libvirt/libvirtd.log; } >"$diag" 2>&1) &
# PID 1 idles; the host stops dom0 by killing QEMU (PID file)
while true; do sleep 3600; done
