#!/bin/bash
# Builds the systemd VM tier's root file system: a Debian bookworm (amd64) made by mmdebstrap,
# with systemd as PID 1, udev, systemd-networkd, apt, alsa-utils and python3 — what a Pi owner's
# fresh Debian has, minus the desktop — as a raw ext4 image (mke2fs -d, no loop mount needed).
# gemlive is NOT in it: the tests install the project's .deb with apt, as an owner would.
# Called by setup-host.sh; usable alone.
# usage: mkrootfs.sh OUT.img MODULES_CPIO_GZ
#   MODULES_CPIO_GZ: the initramfs whose lib/modules tree is copied in (so udev and modprobe in
#   the guest find the same modules the busybox tier loads).
# env: MIRROR (default http://deb.debian.org/debian), ROOTFS_SIZE (default 1536M)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: mkrootfs.sh OUT.img INITRAMFS}
INITRAMFS=${2:?usage: mkrootfs.sh OUT.img INITRAMFS}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ST=$(mktemp -d /tmp/gemlive-rootfs.XXXXXX)
trap 'rm -rf "$ST"' EXIT
# minbase + the packages the guest scripts and a Pi owner's box have. No recommends: the image
# stays small and boots fast under TCG.
PKGS=systemd,systemd-sysv,udev,systemd-timesyncd,iproute2,kmod,procps,apt,ca-certificates,python3,alsa-utils,libasound2,v4l-utils,gpiod,psmisc,e2fsprogs
mmdebstrap --mode=root --variant=minbase --include="$PKGS" \
  --aptopt='Acquire::Retries "3"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd vm-run.service' \
  --setup-hook='mkdir -p "$1/etc/systemd/system" "$1/etc/systemd/network" "$1/usr/local/sbin"' \
  --setup-hook="cp '$HERE/vm-run.service' \"\$1/etc/systemd/system/\"" \
  --setup-hook="install -m 755 '$HERE/vm-run' \"\$1/usr/local/sbin/vm-run\"" \
  --setup-hook="cp '$HERE/10-eth.network' \"\$1/etc/systemd/network/\"" \
  bookworm "$ST/root" "$MIRROR" "deb $MIRROR-security bookworm-security main"
R=$ST/root
echo gemlive-vm > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 gemlive-vm\n' > "$R/etc/hosts"
printf '/dev/vda / ext4 rw,noatime 0 1\n' > "$R/etc/fstab"
passwd -R "$R" -d root >/dev/null
# A real box would reach the network; here the only peer is the host's stand-in. Nothing in the
# image may wait for a network it cannot have (time sync would only log failures).
chroot "$R" systemctl disable systemd-timesyncd >/dev/null 2>&1 || true
# The wait-online service gives up after 20 s here (120 s stock): enough to show an offline boot
# does not hold gemlive back, without a 2-minute test. Something on a real box usually pulls
# network-online.target in; here a drop-in on multi-user.target does.
mkdir -p "$R/etc/systemd/system/systemd-networkd-wait-online.service.d" "$R/etc/systemd/system/multi-user.target.wants"
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --timeout=20\n' \
  > "$R/etc/systemd/system/systemd-networkd-wait-online.service.d/timeout.conf"
ln -sf /lib/systemd/system/network-online.target "$R/etc/systemd/system/multi-user.target.wants/network-online.target"
# Quiet, quick shutdowns.
mkdir -p "$R/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStopSec=15s\nShowStatus=no\n' > "$R/etc/systemd/system.conf.d/vm.conf"
# The guest kernel's modules (from the initramfs) for udev and modprobe.
(cd "$R" && zcat "$INITRAMFS" | cpio -idm --quiet 'lib/modules/*' 2>/dev/null)
[ -d "$R/lib/modules" ] || { echo "mkrootfs: no modules copied from $INITRAMFS" >&2; exit 1; }
rm -rf "$R/var/cache/apt/archives/"*.deb "$R/var/lib/apt/lists/"*_Packages 2>/dev/null || true
mke2fs -q -t ext4 -L gemlive-root -d "$R" "$OUT.tmp" "${ROOTFS_SIZE:-1536M}"
mv "$OUT.tmp" "$OUT"
echo "rootfs: $OUT ($(du -h "$OUT" | cut -f1) used of ${ROOTFS_SIZE:-1536M}), $(chroot "$R" dpkg-query -W | wc -l) packages, systemd $(chroot "$R" dpkg-query -W -f='${Version}' systemd)"
