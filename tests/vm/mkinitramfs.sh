#!/bin/bash
# Build the test VM's initramfs: busybox-static + init + the kernel modules the guest needs
# (with their dependency closure, from `modprobe --show-depends`) + the out-of-tree .ko files.
# Called by setup-host.sh; usable alone.
# usage: mkinitramfs.sh OUT.cpio.gz
# env:   KROOT     unpacked linux-image .deb (contains lib/modules/$KVER)      [required]
#        KVER      kernel version (default: the only one under $KROOT/lib/modules)
#        EXTRA_KO  space-separated out-of-tree .ko files (gpio-sim.ko v4l2loopback.ko)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: mkinitramfs.sh OUT.cpio.gz}
KROOT=${KROOT:?KROOT (unpacked linux-image) required}
KVER=${KVER:-$(ls "$KROOT/lib/modules" | head -1)}
EXTRA_KO=${EXTRA_KO:-}
# Boot-critical modules (loaded by init itself): virtio PCI, 9p over virtio (host root + share),
# overlayfs (writable root), virtio-net (guestfwd), configfs (gpio-sim is configured through it),
# virtio-blk, ext4 and crc32c (the systemd tier's Debian disk; ext4's checksums need crc32c).
# Device modules, loaded only when listed in SHAREDIR/modules: snd-aloop (loopback sound card),
# snd-dummy (paced null card, optional), snd-hrtimer, vivid (raw-format virtual camera, optional),
# and the videodev/videobuf2 stack v4l2loopback needs.
MODS="virtio_pci 9pnet_virtio 9p overlay virtio_net configfs virtio_blk ext4 crc32c_generic
      snd-aloop snd-dummy snd-hrtimer vivid videodev videobuf2-vmalloc videobuf2-v4l2"
ST=$(mktemp -d /tmp/gemlive-initramfs.XXXXXX)
trap 'rm -rf "$ST"' EXIT
mkdir -p "$ST"/{bin,sbin,proc,sys,dev,etc,tmp,run} "$ST/lib/modules/$KVER"
cp /bin/busybox "$ST/bin/busybox"          # busybox-static: no shared libraries needed
cp "$HERE/init" "$ST/init"; chmod 755 "$ST/init"
[ -f "$KROOT/lib/modules/$KVER/modules.dep" ] || depmod -b "$KROOT" "$KVER"
for m in $MODS; do
  modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$KROOT"/lib/modules/"$KVER"/}
  mkdir -p "$ST/lib/modules/$KVER/$(dirname "$rel")"
  cp "$ko" "$ST/lib/modules/$KVER/$rel"
done
mkdir -p "$ST/lib/modules/$KVER/extra"
for ko in $EXTRA_KO; do cp "$ko" "$ST/lib/modules/$KVER/extra/"; done
cp "$KROOT/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$ST/lib/modules/$KVER/"
depmod -b "$ST" "$KVER"
# every module named above must have made it in
for m in $MODS gpio-sim v4l2loopback; do
  modprobe -d "$ST" -S "$KVER" --show-depends "$m" >/dev/null || { echo "initramfs: module $m missing" >&2; exit 1; }
done
(cd "$ST" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT"
echo "initramfs: $(du -h "$OUT" | cut -f1), $(find "$ST" -name '*.ko*' | wc -l) modules, kernel $KVER"
