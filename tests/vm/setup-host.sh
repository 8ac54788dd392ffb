#!/bin/bash
# gemlive real-driver VM tier: one-time, idempotent host setup (Debian 12 x86_64, run as root).
#
# What it does (each step is skipped when its result is already cached in $VMDIR):
#   1. apt: installs qemu (10.x from bookworm-backports), busybox-static, v4l-utils, gpiod 2.x,
#      alsa-utils, cjpeg, socat, kmod/cpio/xz and a compiler. It uses a PRIVATE sources list and
#      private package lists under $VMDIR/apt: /etc/apt is never edited, and no foreign
#      architecture is ever added (dpkg --add-architecture breaks native -dev packages).
#   2. resolves Debian's current stock amd64 kernel ABI (e.g. 6.1.0-56-amd64) from the
#      linux-image-amd64 metapackage at run time (old ABIs vanish from the archive, so it is never
#      hard-coded), downloads and unpacks that linux-image .deb (not installed), and installs the
#      matching linux-headers package.
#   3. extracts an uncompressed vmlinux (PVH entry) from the xz vmlinuz: under TCG the in-guest xz
#      decompressor costs ~4 s per boot.
#   4. builds the two modules Debian does not ship as binaries, out of tree:
#        gpio-sim      from linux-source-6.1 at the kernel's exact version; CONFIG_GPIO_SIM and
#                      CONFIG_IRQ_SIM are off in Debian, so irq_sim.c is linked into the module
#                      and its non-exported irq_to_desc() call is patched to
#                      generic_handle_irq_safe();
#        v4l2loopback  from the v4l2loopback-dkms source (downloaded and unpacked only: dkms
#                      itself is not installed).
#   5. builds the busybox initramfs (mkinitramfs.sh) holding init + the needed modules.
#   6. builds the systemd tier's Debian bookworm disk image (systemd/mkrootfs.sh, mmdebstrap).
#   7. only with VM_ARM64=1: the arm64 systemd tier. Installs qemu-system-arm, qemu-user (10.x,
#      static) and arch-test, registers qemu-aarch64 with binfmt_misc (mounting it if needed) so
#      mmdebstrap can run arm64 maintainer scripts, and builds the arm64 disk image with Debian's
#      arm64 kernel and initramfs (arm64/mkrootfs.sh).
# Result: $VMDIR/vmlinux and $VMDIR/initramfs.cpio.gz, used by vmrun.sh, and
#         $VMDIR/bookworm-amd64.img, used by vmrun-systemd.sh (VM_ARCH=arm64: $VMDIR/arm64/).
#
# env: VMDIR         cache dir (default /tmp/gemlive-vm); delete it for a cold setup
#      APT_MAX_AGE   seconds before the private package lists are refreshed (default 86400)
#      VM_REFRESH=1  refresh the package lists now (picks up a new kernel ABI)
#      VM_NO_SYSTEMD=1  skip step 6
#      VM_ARM64=1       do step 7
# Exit status is non-zero, with a "setup: FAILED" line, if any step or final check fails.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VMDIR=${VMDIR:-/tmp/gemlive-vm}
APT_MAX_AGE=${APT_MAX_AGE:-86400}
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
T_START=$(date +%s%N)
trap 'echo "setup: FAILED (line $LINENO, exit $?) after $(elapsed)s" >&2' ERR
elapsed() { local ms=$(( ($(date +%s%N) - T_START) / 1000000 )); printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)); }
# step LABEL CMD...: run and time one step
step() {
  local label=$1; shift
  local t0; t0=$(date +%s%N)
  "$@"
  echo "setup: $label ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" >&3
}
[ "$(id -u)" = 0 ] || { echo "setup: must run as root" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "setup: x86_64 host required" >&2; exit 1; }
exec 3>&1                              # step timings go to fd 3 = the original stdout
mkdir -p "$VMDIR/apt/lists/partial" "$VMDIR/apt/parts" "$VMDIR/build"
# Serialise concurrent setups (e.g. several test binaries calling this at once).
exec 9>"$VMDIR/.lock"
flock 9

# ---- 1. apt ---------------------------------------------------------------------------------
# Debian 12 + bookworm-backports. Backports is needed because the image's qemu-utils is 10.x from
# backports (bookworm's qemu-system-x86 7.2 would force its removal); it also brings gpiod 2.x.
cat > "$VMDIR/apt/parts/debian.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$VMDIR/apt/parts"
     -o Dir::State::Lists="$VMDIR/apt/lists" -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0)
PKGS=(qemu-system-x86 busybox-static v4l-utils gpiod alsa-utils libasound2-dev libjpeg-turbo-progs
      socat python3 kmod xz-utils cpio gcc make util-linux mmdebstrap e2fsprogs qemu-utils)
stamp=$VMDIR/apt/lists/.updated
if [ -n "${VM_REFRESH:-}" ] || [ ! -f "$stamp" ] || [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -gt "$APT_MAX_AGE" ]; then
  step "apt-get update (private lists)" apt-get "${APT[@]}" update -qq
  touch "$stamp"
else
  echo "setup: package lists fresh (< ${APT_MAX_AGE}s), not updating"
fi
installed() { # all named packages installed?
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || return 1
  done
}
if installed "${PKGS[@]}"; then
  echo "setup: host packages already installed"
else
  # --no-upgrade: never upgrade what is installed; -t backports: qemu/gpiod from backports.
  step "apt-get install tools" apt-get "${APT[@]}" install -y -qq --no-install-recommends --no-upgrade \
    -t bookworm-backports "${PKGS[@]}" >/dev/null
fi
# gpiod must be 2.x (scripts use `gpioget -c CHIP LINE`)
gpioget --version 2>/dev/null | grep -q 'v2\.' || { echo "setup: gpiod 2.x required, got: $(gpioget --version 2>&1 | head -1)" >&2; exit 1; }

# ---- 2. kernel --------------------------------------------------------------------------------
KPKG=$(apt-cache "${APT[@]}" depends linux-image-amd64/bookworm-security 2>/dev/null | grep -o 'linux-image-[0-9][^ ]*-amd64' | head -1 || true)
[ -n "$KPKG" ] || KPKG=$(apt-cache "${APT[@]}" depends linux-image-amd64/bookworm | grep -o 'linux-image-[0-9][^ ]*-amd64' | head -1)
[ -n "$KPKG" ] || { echo "setup: cannot resolve the Debian kernel package" >&2; exit 1; }
KVER=${KPKG#linux-image-}
KDEBVER=$(apt-cache "${APT[@]}" show "$KPKG" | awk '/^Version:/{print $2; exit}')
echo "setup: kernel $KVER ($KDEBVER)"
if ! installed "linux-headers-$KVER"; then
  step "install linux-headers-$KVER" apt-get "${APT[@]}" install -y -qq --no-install-recommends "linux-headers-$KVER" >/dev/null
fi
cd "$VMDIR/build"
# drop trees of kernels the archive has moved past
for d in kroot-* mods-*; do
  [ -e "$d" ] || continue
  case "$d" in *-"$KVER") ;; *) echo "setup: removing stale $d"; rm -rf "$d" ;; esac
done
fetch_kernel() {
  rm -rf "kroot-$KVER.tmp" && mkdir "kroot-$KVER.tmp"
  (cd "kroot-$KVER.tmp" && apt-get "${APT[@]}" download "$KPKG=$KDEBVER" >/dev/null)
  dpkg-deb -x "kroot-$KVER.tmp/${KPKG}"_*.deb "kroot-$KVER.tmp/root"
  depmod -b "$PWD/kroot-$KVER.tmp/root" "$KVER"
  mv "kroot-$KVER.tmp/root" "kroot-$KVER" && rm -rf "kroot-$KVER.tmp"
}
if [ -f "kroot-$KVER/boot/vmlinuz-$KVER" ]; then echo "setup: kernel tree cached"
else step "download + unpack $KPKG" fetch_kernel; fi
KROOT=$PWD/kroot-$KVER

# ---- 3. vmlinux ------------------------------------------------------------------------------
extract_vmlinux() {
  /usr/bin/python3 - "$KROOT/boot/vmlinuz-$KVER" "$VMDIR/vmlinux.tmp" <<'PY'
import lzma, sys
d = open(sys.argv[1], 'rb').read()
off = d.find(b'\xfd7zXZ\x00')
if off < 0:
    sys.exit("no xz payload in vmlinuz")
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[off:])
if out[:4] != b'\x7fELF':
    sys.exit("xz payload is not an ELF vmlinux")
open(sys.argv[2], 'wb').write(out)
PY
  mv "$VMDIR/vmlinux.tmp" "$VMDIR/vmlinux"
  echo "$KVER" > "$VMDIR/vmlinux.kver"
}
if [ -f "$VMDIR/vmlinux" ] && [ "$(cat "$VMDIR/vmlinux.kver" 2>/dev/null)" = "$KVER" ]; then echo "setup: vmlinux cached"
else step "extract vmlinux" extract_vmlinux; fi

# ---- 4. out-of-tree modules -----------------------------------------------------------------
MODS=$PWD/mods-$KVER
mkdir -p "$MODS"
KHDR=/usr/src/linux-headers-$KVER
build_gpio_sim() {
  local SRCPKG=linux-source-${KVER%%.0-*}          # 6.1.0-56-amd64 -> linux-source-6.1
  rm -rf gpiosim && mkdir -p gpiosim/dl
  (cd gpiosim/dl && apt-get "${APT[@]}" download "$SRCPKG=$KDEBVER" >/dev/null)
  dpkg-deb --fsys-tarfile gpiosim/dl/"${SRCPKG}"_*.deb | tar -xO "./usr/src/$SRCPKG.tar.xz" | xz -dc -T2 | \
    tar -x -C gpiosim --strip-components=3 "$SRCPKG/drivers/gpio/gpio-sim.c" \
      "$SRCPKG/drivers/gpio/gpiolib.h" "$SRCPKG/kernel/irq/irq_sim.c"
  rm -rf gpiosim/dl
  mv gpiosim/gpio-sim.c gpiosim/gpio-sim-main.c
  sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq_safe(irqnum);/' gpiosim/irq_sim.c
  grep -q 'generic_handle_irq_safe(irqnum)' gpiosim/irq_sim.c || { echo "setup: irq_sim.c patch did not apply" >&2; return 1; }
  printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' > gpiosim/Kbuild
  make -s -C "$KHDR" M="$PWD/gpiosim" -j2 modules
  cp gpiosim/gpio-sim.ko "$MODS/gpio-sim.ko"
}
build_v4l2loopback() {
  rm -rf v4l2loopback && mkdir -p v4l2loopback/dl
  (cd v4l2loopback/dl && apt-get "${APT[@]}" download v4l2loopback-dkms >/dev/null)
  dpkg-deb -x v4l2loopback/dl/v4l2loopback-dkms_*.deb v4l2loopback/deb
  local src; src=$(ls -d v4l2loopback/deb/usr/src/v4l2loopback-* | head -1)
  mv "$src" v4l2loopback/src && rm -rf v4l2loopback/dl v4l2loopback/deb
  make -s -C "$KHDR" M="$PWD/v4l2loopback/src" -j2 modules
  cp v4l2loopback/src/v4l2loopback.ko "$MODS/v4l2loopback.ko"
}
if [ -f "$MODS/gpio-sim.ko" ]; then echo "setup: gpio-sim.ko cached"
else step "build gpio-sim.ko" build_gpio_sim; fi
if [ -f "$MODS/v4l2loopback.ko" ]; then echo "setup: v4l2loopback.ko cached"
else step "build v4l2loopback.ko" build_v4l2loopback; fi

# ---- 5. initramfs (rebuilt when init, mkinitramfs.sh, the modules or busybox change) ----------
KEY=$(cat "$HERE/init" "$HERE/mkinitramfs.sh" "$MODS"/*.ko /bin/busybox | sha256sum | cut -c1-16)-$KVER
if [ -f "$VMDIR/initramfs.cpio.gz" ] && [ "$(cat "$VMDIR/initramfs.key" 2>/dev/null)" = "$KEY" ]; then
  echo "setup: initramfs cached"
else
  step "build initramfs" env KROOT="$KROOT" KVER="$KVER" EXTRA_KO="$MODS/gpio-sim.ko $MODS/v4l2loopback.ko" \
    "$HERE/mkinitramfs.sh" "$VMDIR/initramfs.cpio.gz.tmp"
  mv "$VMDIR/initramfs.cpio.gz.tmp" "$VMDIR/initramfs.cpio.gz"
  echo "$KEY" > "$VMDIR/initramfs.key"
fi

# ---- 6. the systemd tier's Debian root file system (rebuilt when its recipe or the modules change)
# VM_NO_SYSTEMD=1 skips it (the busybox tier alone needs none of it).
ROOTFS=$VMDIR/bookworm-amd64.img
if [ -z "${VM_NO_SYSTEMD:-}" ]; then
  RKEY=$(cat "$HERE"/systemd/* | sha256sum | cut -c1-16)-$(cat "$VMDIR/initramfs.key")
  if [ -f "$ROOTFS" ] && [ "$(cat "$VMDIR/rootfs.key" 2>/dev/null)" = "$RKEY" ]; then
    echo "setup: systemd root file system cached"
  else
    step "build the systemd root file system (mmdebstrap)" "$HERE/systemd/mkrootfs.sh" "$ROOTFS" "$VMDIR/initramfs.cpio.gz"
    echo "$RKEY" > "$VMDIR/rootfs.key"
  fi
fi

# ---- 7. the arm64 systemd tier (opt-in: VM_ARM64=1) ------------------------------------------
if [ -n "${VM_ARM64:-}" ]; then
  ARM_PKGS=(qemu-system-arm qemu-user arch-test)
  if ! installed "${ARM_PKGS[@]}" || ! [ -x /usr/libexec/qemu-binfmt/aarch64-binfmt-P ]; then
    # qemu-user 10.x (backports) is static: binfmt_misc's F flag makes it work inside a chroot.
    step "apt-get install arm64 tools" apt-get "${APT[@]}" install -y -qq --no-install-recommends --no-upgrade \
      -t bookworm-backports "${ARM_PKGS[@]}" >/dev/null
  fi
  if readelf -l /usr/libexec/qemu-binfmt/aarch64-binfmt-P | grep -q 'program interpreter'; then
    echo "setup: qemu-aarch64 is not static (qemu-user 10.x from bookworm-backports needed)" >&2; exit 1
  fi
  # binfmt_misc: the kernel runs arm64 programs through qemu-aarch64. Nothing else on the host
  # changes (no foreign dpkg architecture); a container may need it mounted first.
  B=/proc/sys/fs/binfmt_misc
  [ -e "$B/register" ] || mount -t binfmt_misc binfmt_misc "$B" \
    || { echo "setup: cannot mount binfmt_misc (a container needs --privileged)" >&2; exit 1; }
  if [ ! -e "$B/qemu-aarch64" ]; then
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > "$B/register"
    echo "setup: registered qemu-aarch64 with binfmt_misc"
  fi
  echo 1 > "$B/qemu-aarch64"
  arch-test arm64 >/dev/null || { echo "setup: arm64 programs do not run through binfmt_misc" >&2; exit 1; }
  mkdir -p "$VMDIR/arm64"
  AKEY=$(cat "$HERE"/arm64/mkrootfs.sh "$HERE"/arm64/vm-share "$HERE"/systemd/* | sha256sum | cut -c1-16)
  if [ -f "$VMDIR/arm64/bookworm-arm64.img" ] && [ "$(cat "$VMDIR/arm64/rootfs.key" 2>/dev/null)" = "$AKEY" ]; then
    echo "setup: arm64 root file system cached"
  else
    step "build the arm64 root file system (mmdebstrap, qemu-user)" "$HERE/arm64/mkrootfs.sh" "$VMDIR/arm64"
    echo "$AKEY" > "$VMDIR/arm64/rootfs.key"
  fi
fi

# ---- final checks: fail loudly if anything vmrun.sh or the guest scripts need is missing -----
missing=()
for c in qemu-system-x86_64 socat busybox v4l2-ctl gpioget gpioset gpiomon gpiodetect gpioinfo \
         aplay arecord cjpeg timeout flock; do
  command -v "$c" >/dev/null || missing+=("command:$c")
done
for f in /usr/bin/python3 "$VMDIR/vmlinux" "$VMDIR/initramfs.cpio.gz" "$MODS/gpio-sim.ko" "$MODS/v4l2loopback.ko"; do
  [ -s "$f" ] || missing+=("file:$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: FAILED, missing: ${missing[*]}" >&2
  exit 1
fi
trap - ERR
echo "setup: ok in $(elapsed)s: kernel $KVER, $(qemu-system-x86_64 --version | head -1)"
echo "setup:   $VMDIR/vmlinux ($(du -h "$VMDIR/vmlinux" | cut -f1)), $VMDIR/initramfs.cpio.gz ($(du -h "$VMDIR/initramfs.cpio.gz" | cut -f1))"
