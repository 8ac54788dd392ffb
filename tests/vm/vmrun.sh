#!/bin/bash
# Boot the gemlive test VM and run SHAREDIR/run.sh inside it, as root, in a chroot of the host's /.
# usage: vmrun.sh SHAREDIR
#   SHAREDIR/run.sh   required: the guest-side script; cwd = SHAREDIR, which is mounted read-write
#                     at the same absolute path in the guest (write results there). Run directly
#                     if executable (honours its #!), else with /bin/sh.
#   SHAREDIR/modules  optional: kernel modules for init to load, one "name param=value ..." per line
# run.sh's environment is clean (PATH, HOME, TERM, LANG) plus VM_SHARE=SHAREDIR and
# VM_TOOLS=this directory (host root is visible read-only: "$VM_TOOLS/relay.py",
# "$VM_TOOLS/mjpeg_producer.py" work without copying them into SHAREDIR).
# Output: the serial console on stdout and in SHAREDIR/console.log (\r stripped in the log);
#         SHAREDIR/rc = run.sh's exit code.
# Exit:   run.sh's exit code; 124 = timed out; 125 = VM died without reporting; 2 = usage.
# env: VMDIR          where setup-host.sh put vmlinux + initramfs (default /tmp/gemlive-vm)
#      KERNEL INITRD  override those two files
#      TIMEOUT=240    seconds for the whole VM run (boot ~4-6 s under TCG on 2 host cores)
#      SMP=2 MEM=1024 vCPUs (1 boots ~1 s faster) and guest RAM in MiB (the root's writes are RAM)
#      HOSTFWD_PORTS="8765 ..."  for each PORT, guest 10.0.2.100:PORT reaches host 127.0.0.1:PORT.
#                     Nothing else is reachable (user net with restrict=on). Each guest connection
#                     gets its OWN host connection (guestfwd's cmd: form; the tcp: form would share
#                     one host connection, opened at boot, between all guest connections).
#      VM_CONNECTOR=python   use relay.py --stdio instead of socat as the per-connection connector
#      QEMU_EXTRA APPEND_EXTRA   extra qemu arguments / kernel command line words
# Acceleration is TCG (-cpu max): this host's /dev/kvm is PVM and cannot boot Debian kernels.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARE=$(cd "${1:?usage: vmrun.sh SHAREDIR}" && pwd)
[ -f "$SHARE/run.sh" ] || { echo "vmrun: $SHARE/run.sh missing" >&2; exit 2; }
for d in "$SHARE" "$HERE"; do  # both go on the kernel command line / into -virtfs options
  case "$d" in *[[:space:],]*) echo "vmrun: $d: path must not contain spaces or commas" >&2; exit 2 ;; esac
done
VMDIR=${VMDIR:-/tmp/gemlive-vm}
KERNEL=${KERNEL:-$VMDIR/vmlinux}
INITRD=${INITRD:-$VMDIR/initramfs.cpio.gz}
for f in "$KERNEL" "$INITRD"; do
  [ -s "$f" ] || { echo "vmrun: $f missing: run $HERE/setup-host.sh first" >&2; exit 2; }
done
MEM=${MEM:-1024}; SMP=${SMP:-2}; TIMEOUT=${TIMEOUT:-240}
# shellcheck source=tests/vm/qemu-net.sh
. "$HERE/qemu-net.sh"   # NETDEV (HOSTFWD_PORTS) and BIOS
rm -f "$SHARE/rc" "$SHARE/console.log"
t0=$(date +%s%N)
set +e
# stdin MUST be /dev/null: with a closed stdin (as under CI) qemu's -serial stdio dies at once.
timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
  -m "$MEM" -smp "$SMP" \
  -nodefaults -no-user-config -nographic -no-reboot -serial stdio -monitor none \
  "${BIOS[@]}" ${QEMU_EXTRA:-} \
  -kernel "$KERNEL" -initrd "$INITRD" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off ${APPEND_EXTRA:-} vm.share=$SHARE vm.tools=$HERE" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none,multidevs=remap" \
  -netdev "$NETDEV" -device virtio-net-pci,netdev=n0,romfile= \
  < /dev/null 2>&1 | tee "$SHARE/console.log"
qrc=${PIPESTATUS[0]}
set -e
sed -i 's/\r$//' "$SHARE/console.log"
secs=$(( ($(date +%s%N) - t0) / 1000000 ))
wall="$((secs / 1000)).$((secs % 1000 / 100))s"
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "vmrun: timed out after ${TIMEOUT}s" >&2; exit 124; fi
[ -s "$SHARE/rc" ] || { echo "vmrun: VM exited (qemu rc $qrc) without writing rc, after $wall" >&2; exit 125; }
rc=$(cat "$SHARE/rc")
echo "vmrun: guest run.sh exited $rc, VM wall $wall" >&2
exit "$rc"
