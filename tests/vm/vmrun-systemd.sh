#!/bin/bash
# Boot the systemd VM tier: Debian bookworm with systemd as PID 1 on a copy-on-write disk over
# the cached root file system ($VMDIR/bookworm-amd64.img, made by setup-host.sh), and run
# SHAREDIR/run.sh once the boot is done (tests/vm/systemd/vm-run). run.sh may ask for a reboot
# (touch SHAREDIR/reboot and exit): the VM then boots again on the same disk with VM_BOOT+1, and
# with SHAREDIR/offline present that boot has no network card at all.
# usage: vmrun-systemd.sh SHAREDIR
# Output: the console on stdout and in SHAREDIR/console.log; SHAREDIR/boots: one line per boot
#         "N online|offline WALL_S". Exit: run.sh's code; 124 timeout; 125 no result; 2 usage.
# env: VMDIR, KERNEL, INITRD, SMP, MEM, HOSTFWD_PORTS, VM_CONNECTOR as vmrun.sh;
#      ROOTFS (default $VMDIR/bookworm-amd64.img); TIMEOUT=600 for all boots together;
#      MAX_BOOTS=4;
#      VM_ARCH=arm64: qemu-system-aarch64 -M virt booting the arm64 image's own Debian kernel and
#      initramfs ($VMDIR/arm64/, made by setup-host.sh with VM_ARM64=1) instead of the busybox
#      initramfs
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARE=$(cd "${1:?usage: vmrun-systemd.sh SHAREDIR}" && pwd)
[ -f "$SHARE/run.sh" ] || { echo "vmrun: $SHARE/run.sh missing" >&2; exit 2; }
case "$SHARE" in *[[:space:],]*) echo "vmrun: $SHARE: path must not contain spaces or commas" >&2; exit 2 ;; esac
VMDIR=${VMDIR:-/tmp/gemlive-vm}
case "${VM_ARCH:-amd64}" in
  amd64)
    KERNEL=${KERNEL:-$VMDIR/vmlinux}
    INITRD=${INITRD:-$VMDIR/initramfs.cpio.gz}
    ROOTFS=${ROOTFS:-$VMDIR/bookworm-amd64.img}
    # the busybox init mounts the disk and the share, loads the test's modules, then systemd
    QEMU=(qemu-system-x86_64 -cpu max); CONSOLE=ttyS0; ROOTARG="vm.root=/dev/vda" ;;
  arm64)
    KERNEL=${KERNEL:-$VMDIR/arm64/arm64-vmlinuz}
    INITRD=${INITRD:-$VMDIR/arm64/arm64-initrd.img}
    ROOTFS=${ROOTFS:-$VMDIR/arm64/bookworm-arm64.img}
    # Debian's own initramfs mounts the disk; vm-share (in the image) mounts the share.
    # pauth-impdef: the architected pointer-authentication hash costs TCG dearly.
    QEMU=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on); CONSOLE=ttyAMA0; ROOTARG="root=/dev/vda rw" ;;
  *) echo "vmrun: VM_ARCH must be amd64 or arm64" >&2; exit 2 ;;
esac
for f in "$KERNEL" "$INITRD" "$ROOTFS"; do
  [ -s "$f" ] || { echo "vmrun: $f missing: run $HERE/setup-host.sh first" >&2; exit 2; }
done
MEM=${MEM:-1024}; SMP=${SMP:-2}; TIMEOUT=${TIMEOUT:-600}; MAX_BOOTS=${MAX_BOOTS:-4}
# shellcheck source=tests/vm/qemu-net.sh
. "$HERE/qemu-net.sh"   # NETDEV (HOSTFWD_PORTS) and BIOS
[ "${VM_ARCH:-amd64}" = amd64 ] || BIOS=()   # -M virt boots -kernel without firmware
DISK=$(mktemp /tmp/gemlive-disk.XXXXXX.qcow2)
trap 'rm -f "$DISK"' EXIT
# The cached image stays pristine: every run writes to its own overlay, kept across reboots.
qemu-img create -q -f qcow2 -b "$ROOTFS" -F raw "$DISK"
rm -f "$SHARE/rc" "$SHARE/reboot" "$SHARE/console.log" "$SHARE/boots"
deadline=$(( $(date +%s) + TIMEOUT ))
boot=1
while :; do
  NET=(-netdev "$NETDEV" -device virtio-net-pci,netdev=n0,romfile=)
  mode=online
  if [ -f "$SHARE/offline" ]; then NET=(); mode=offline; rm -f "$SHARE/offline"; fi
  left=$(( deadline - $(date +%s) ))
  [ "$left" -gt 0 ] || { echo "vmrun: timed out after ${TIMEOUT}s" >&2; exit 124; }
  echo "vmrun: boot $boot ($mode)" | tee -a "$SHARE/console.log"
  t0=$(date +%s%N)
  set +e
  # stdin MUST be /dev/null (see vmrun.sh). -no-reboot: a guest reboot ends qemu; the loop boots
  # the same disk again, which is what a reboot is to the guest.
  timeout --foreground -k 5 "$left" "${QEMU[@]}" -accel tcg,thread=multi \
    -m "$MEM" -smp "$SMP" \
    -nodefaults -no-user-config -nographic -no-reboot -serial stdio -monitor none \
    "${BIOS[@]}" ${QEMU_EXTRA:-} \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=$CONSOLE quiet loglevel=3 panic=-1 mitigations=off systemd.show_status=0 ${APPEND_EXTRA:-} $ROOTARG vm.share=$SHARE vm.boot=$boot" \
    -drive "file=$DISK,if=virtio,format=qcow2,cache=unsafe,discard=unmap" \
    -virtfs "local,path=$SHARE,mount_tag=share,security_model=none,multidevs=remap" \
    "${NET[@]}" \
    < /dev/null 2>&1 | sed -u 's/\r$//' | tee -a "$SHARE/console.log"
  qrc=${PIPESTATUS[0]}
  set -e
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "$boot $mode $((ms / 1000)).$((ms % 1000 / 100))" >> "$SHARE/boots"
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "vmrun: timed out after ${TIMEOUT}s" >&2; exit 124; fi
  if [ -f "$SHARE/rc" ]; then break; fi
  if [ -f "$SHARE/reboot" ] && [ "$boot" -lt "$MAX_BOOTS" ]; then
    rm -f "$SHARE/reboot"; boot=$((boot + 1)); continue
  fi
  echo "vmrun: VM exited (qemu rc $qrc) without writing rc, boot $boot" >&2
  exit 125
done
rc=$(cat "$SHARE/rc")
echo "vmrun: guest run.sh exited $rc after $boot boot(s): $(tr '\n' ';' < "$SHARE/boots")" >&2
exit "$rc"
