#!/bin/bash
# Builds the arm64 systemd tier's disk: Debian bookworm for arm64 made by mmdebstrap on this x86
# host (arm64 maintainer scripts run under qemu-user through binfmt_misc, see setup-host.sh step
# 7), booted by qemu-system-aarch64 -M virt with Debian's own arm64 kernel and initramfs, as a Pi
# owner's Debian boots. Unlike the amd64 tier there is no busybox init: the image carries its
# kernel (linux-image-arm64, initramfs-tools) and v4l2loopback built for it by dkms inside the
# image. gemlive is NOT in it: the test installs the project's arm64 .deb with apt.
# The initramfs holds only the modules that mount the disk (MODULES=list): mkinitramfs forks
# thousands of programs, each one started by qemu-user, and "most" takes minutes per run.
# usage: mkrootfs.sh OUT_DIR
#   writes OUT_DIR/bookworm-arm64.img (raw ext4), OUT_DIR/arm64-vmlinuz, OUT_DIR/arm64-initrd.img
# env: MIRROR (default http://deb.debian.org/debian), ROOTFS_SIZE (default 2560M)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SD=$HERE/../systemd
OUT=${1:?usage: mkrootfs.sh OUT_DIR}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ST=$(mktemp -d /tmp/gemlive-rootfs-arm64.XXXXXX)
trap 'rm -rf "$ST"' EXIT
# The amd64 image's packages, plus the kernel, its initramfs, and v4l2loopback (not a binary
# module in Debian) with what dkms needs to build it in the image.
PKGS=systemd,systemd-sysv,udev,systemd-timesyncd,iproute2,kmod,procps,apt,ca-certificates,python3,alsa-utils,libasound2,v4l-utils,gpiod,psmisc,e2fsprogs
PKGS+=,linux-image-arm64,linux-headers-arm64,initramfs-tools,v4l2loopback-dkms,dkms,gcc,make
mmdebstrap --mode=root --variant=minbase --architectures=arm64 --include="$PKGS" \
  --aptopt='Acquire::Retries "3"' \
  --setup-hook='mkdir -p "$1/etc/systemd/system/vm-run.service.d" "$1/etc/systemd/network" "$1/usr/local/sbin" "$1/etc/initramfs-tools"' \
  --setup-hook="printf 'virtio_pci\nvirtio_blk\next4\n' > \"\$1/etc/initramfs-tools/modules\"" \
  --setup-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" && echo MODULES=list > \"\$1/etc/initramfs-tools/conf.d/vm.conf\"" \
  --setup-hook="cp '$SD/vm-run.service' \"\$1/etc/systemd/system/\"" \
  --setup-hook="install -m 755 '$SD/vm-run' \"\$1/usr/local/sbin/vm-run\"" \
  --setup-hook="install -m 755 '$HERE/vm-share' \"\$1/usr/local/sbin/vm-share\"" \
  --setup-hook="printf '[Service]\nExecStartPre=/usr/local/sbin/vm-share\n' > \"\$1/etc/systemd/system/vm-run.service.d/share.conf\"" \
  --setup-hook="cp '$SD/10-eth.network' \"\$1/etc/systemd/network/\"" \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd vm-run.service' \
  bookworm "$ST/root" "$MIRROR" "deb $MIRROR-security bookworm-security main"
R=$ST/root
KVER=$(ls "$R/lib/modules" | sort -V | tail -1)
[ -f "$R/lib/modules/$KVER/updates/dkms/v4l2loopback.ko" ] || [ -n "$(find "$R/lib/modules/$KVER" -name 'v4l2loopback.ko*' | head -1)" ] \
  || { echo "mkrootfs: dkms did not build v4l2loopback for $KVER" >&2; exit 1; }
echo gemlive-vm > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 gemlive-vm\n' > "$R/etc/hosts"
printf '/dev/vda / ext4 rw,noatime 0 1\n' > "$R/etc/fstab"
passwd -R "$R" -d root >/dev/null
chroot "$R" systemctl disable systemd-timesyncd >/dev/null 2>&1 || true
mkdir -p "$R/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStopSec=15s\nShowStatus=no\n' > "$R/etc/systemd/system.conf.d/vm.conf"
rm -rf "$R/var/cache/apt/archives/"*.deb "$R/var/lib/apt/lists/"*_Packages 2>/dev/null || true
cp "$R/boot/vmlinuz-$KVER" "$OUT/arm64-vmlinuz.tmp"
cp "$R/boot/initrd.img-$KVER" "$OUT/arm64-initrd.img.tmp"
mke2fs -q -t ext4 -L gemlive-root -d "$R" "$OUT/bookworm-arm64.img.tmp" "${ROOTFS_SIZE:-2560M}"
mv "$OUT/arm64-vmlinuz.tmp" "$OUT/arm64-vmlinuz"
mv "$OUT/arm64-initrd.img.tmp" "$OUT/arm64-initrd.img"
mv "$OUT/bookworm-arm64.img.tmp" "$OUT/bookworm-arm64.img"
echo "rootfs: $OUT/bookworm-arm64.img ($(du -h "$OUT/bookworm-arm64.img" | cut -f1) used of ${ROOTFS_SIZE:-2560M}), kernel $KVER, $(chroot "$R" dpkg-query -W | wc -l) packages, systemd $(chroot "$R" dpkg-query -W -f='${Version}' systemd)"
