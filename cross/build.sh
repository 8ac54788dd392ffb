#!/usr/bin/env bash
# Cross-builds the gemlive release binary for Raspberry Pi on a Debian x86_64 host, without
# Docker and without `dpkg --add-architecture`.
#
# usage: cross/build.sh [aarch64|armv7|amd64|all]       (default: aarch64; all = aarch64 armv7)
#   aarch64 = aarch64-unknown-linux-gnu      Pi 3/4/5, Zero 2 W on 64-bit Raspberry Pi OS (arm64)
#   armv7   = armv7-unknown-linux-gnueabihf  Pi 2/3/4/Zero 2 W on 32-bit Raspberry Pi OS (armhf)
#             (not ARMv6: Pi 1, Zero, Zero W)
#   amd64   = x86_64-unknown-linux-gnu       PCs and VMs (amd64): a NATIVE build on this x86_64
#             host, against the host's own libasound2-dev and glibc (no sysroot, no cross env);
#             steps 1 (native packages only), 2, 4 and 5 below apply.
#
# What it does (idempotent; each step is skipped when already done):
#   1. host packages: Debian's cross gcc + libc6-dev for the target, clang/libclang (v4l's bindgen),
#      pkg-config, qemu-user (for cross/qemu-smoke.sh). Installed with --no-install-recommends.
#   2. `rustup target add` for the target.
#   3. a private sysroot in $CROSS_DIR/sysroot-<arch> with the target's libasound2, libasound2-dev,
#      libasound2-data, libc6 and libgcc-s1 from Debian bookworm (= Raspberry Pi OS bookworm),
#      fetched with a private apt configuration (own sources, lists, cache and empty dpkg status:
#      /etc/apt and the host's dpkg database are never touched) and unpacked with `dpkg-deb -x`.
#      The loader and libs in it are what cross/qemu-smoke.sh runs the binary with.
#   4. `cargo build --release --locked --target <triple>` with the cross linker, pkg-config pointed
#      at the sysroot, and bindgen's clang pointed at the cross libc headers.
#   5. prints the binary's size, the shared libraries it needs and its highest GLIBC_ symbol
#      version, and FAILS if that is above 2.36 (Raspberry Pi OS / Debian bookworm) or if the
#      stripped binary is larger than $MAX_BYTES (default 5.5 MB: the budget once MQTT came in;
#      5 MB with the owner's tools, 4 MB before them).
# Result: target/<triple>/release/gemlive (stripped by profile.release).
#
# env: CROSS_DIR    cache dir for sysroots and apt lists (default /tmp/gemlive-cross)
#      SUITE        Debian suite of the target libraries (default bookworm)
#      APT_MAX_AGE  seconds before the private package lists are refreshed (default 86400)
#      GLIBC_MAX    highest allowed GLIBC_ symbol version (default 2.36)
#      MAX_BYTES    largest allowed stripped binary (default 5500000)
#      AMD64_MAX_BYTES  the same for amd64 (default 8000000: x86_64 code is bigger, and the JPEG
#                   and echo crates add AVX2/SSE4.1 variants chosen at run time)
#      CROSS_NO_INSTALL=1  never run apt-get install / rustup (fail if something is missing)
# Also sourceable by the other cross/ scripts: `. cross/build.sh --lib` defines the functions only.
# shellcheck disable=SC2015  # `A && B || die` is meant: die unless both hold
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CROSS_DIR=${CROSS_DIR:-/tmp/gemlive-cross}
SUITE=${SUITE:-bookworm}
APT_MAX_AGE=${APT_MAX_AGE:-86400}
GLIBC_MAX=${GLIBC_MAX:-2.36}
MAX_BYTES=${MAX_BYTES:-5500000}
AMD64_MAX_BYTES=${AMD64_MAX_BYTES:-8000000}
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { echo "cross: $*"; }
die() { echo "cross: FAILED: $*" >&2; exit 1; }

# arch_vars NAME: sets TRIPLE (Rust), GNU (gcc prefix), DEB (Debian arch)
arch_vars() {
  case "$1" in
    aarch64|arm64) TRIPLE=aarch64-unknown-linux-gnu GNU=aarch64-linux-gnu DEB=arm64 ;;
    armv7|armhf) TRIPLE=armv7-unknown-linux-gnueabihf GNU=arm-linux-gnueabihf DEB=armhf ;;
    amd64|x86_64) TRIPLE=x86_64-unknown-linux-gnu GNU=x86_64-linux-gnu DEB=amd64 ;;
    *) die "unknown target '$1' (expected aarch64, armv7, amd64 or all)" ;;
  esac
  SYSROOT=$CROSS_DIR/sysroot-$DEB
}

# built_binary NAME: after arch_vars, sets BIN (default target/<triple>/release/gemlive) and
# fails unless cross/build.sh NAME has made that binary and its sysroot (qemu-user needs both)
built_binary() {
  BIN=$(realpath "${BIN:-$ROOT/target/$TRIPLE/release/gemlive}")
  [ -x "$BIN" ] || die "no binary $BIN: run cross/build.sh $1 first"
  [ -f "$SYSROOT/.pkgs" ] || die "no sysroot $SYSROOT: run cross/build.sh $1 first"
}

installed() { # all named packages installed?
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || return 1
  done
}

# host_packages DEB: the host tools for one target arch (amd64: the native build's own)
host_packages() {
  local gnu=$GNU pkgs
  if [ "$1" = amd64 ]; then
    pkgs=(gcc libc6-dev binutils libasound2-dev clang libclang-dev pkg-config ca-certificates)
  else
    pkgs=("gcc-$gnu" "binutils-$gnu" "libc6-dev-$1-cross" clang libclang-dev pkg-config gcc libc6-dev
          qemu-user ca-certificates)
  fi
  if installed "${pkgs[@]}"; then
    return 0
  fi
  [ -z "${CROSS_NO_INSTALL:-}" ] || die "missing host packages (CROSS_NO_INSTALL set): ${pkgs[*]}"
  log "installing host packages: ${pkgs[*]}"
  # --no-upgrade: never upgrade what is installed; no foreign architecture is ever added.
  $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade "${pkgs[@]}" >/dev/null || {
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade "${pkgs[@]}" >/dev/null
  }
}

rust_target() {
  if rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE"; then
    return 0
  fi
  command -v rustup >/dev/null || die "rustup not found: install the Rust std for $TRIPLE yourself"
  [ -z "${CROSS_NO_INSTALL:-}" ] || die "Rust target $TRIPLE missing (CROSS_NO_INSTALL set)"
  rustup target add "$TRIPLE"
}

# sysroot: the target's libraries from Debian $SUITE, unpacked into $SYSROOT
SYSROOT_PKGS=(libasound2 libasound2-dev libasound2-data libc6 libgcc-s1)
sysroot() {
  local apt=$CROSS_DIR/apt-$DEB
  mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
  : > "$apt/status"
  cat > "$apt/parts/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Architectures: $DEB
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Architectures: $DEB
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/parts"
       -o Dir::State::Lists="$apt/lists" -o Dir::State::status="$apt/status"
       -o Dir::Cache="$apt/cache" -o Dir::Etc::Preferences=/dev/null
       -o Dir::Etc::PreferencesParts="$apt/parts"
       -o APT::Architecture="$DEB" -o APT::Architectures="$DEB"
       -o APT::Sandbox::User=root -o Debug::NoLocking=1 -o Dpkg::Use-Pty=0)
  local stamp=$apt/lists/.updated
  if [ ! -f "$stamp" ] || [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -gt "$APT_MAX_AGE" ]; then
    log "apt-get update ($SUITE $DEB, private lists in $apt)"
    local try ok=""
    for try in 1 2 3; do  # a mirror mid-sync ("File has unexpected size") usually fixes itself
      if apt-get "${APT[@]}" update -qq; then ok=1; break; fi
      if [ "$try" -lt 3 ]; then
        log "apt-get update failed (attempt $try), retrying in $((try * 10)) s"
        sleep $((try * 10))
      fi
    done
    if [ -n "$ok" ]; then
      touch "$stamp"
    else
      # Some index (seen: a stale proxy copy of bookworm-security's armhf Packages.xz) would not
      # download: carry on with the indexes that did; the candidates are checked below. The
      # stamp is not touched, so the next run tries again.
      log "WARNING: apt-get update failed 3 times; using the package lists that did download"
    fi
  fi
  # The exact versions the index offers now: the sysroot is rebuilt when any of them changes.
  local want p v
  want=$(for p in "${SYSROOT_PKGS[@]}"; do
    v=$(apt-cache "${APT[@]}" policy "$p" | awk '/Candidate:/{print $2}')
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "$p has no $DEB candidate in $SUITE"
    echo "$p=$v"
  done)
  if [ -f "$SYSROOT/.pkgs" ] && [ "$(cat "$SYSROOT/.pkgs")" = "$want" ]; then
    log "sysroot $SYSROOT up to date"
    return 0
  fi
  log "building sysroot $SYSROOT from: ${want//$'\n'/ }"
  rm -rf "$apt/debs" "$SYSROOT.tmp" && mkdir -p "$apt/debs" "$SYSROOT.tmp"
  # APT::Architecture is the target's, so plain names are the target's packages
  # shellcheck disable=SC2086
  (cd "$apt/debs" && apt-get "${APT[@]}" download -qq $want)
  for p in "$apt/debs"/*.deb; do dpkg-deb -x "$p" "$SYSROOT.tmp"; done
  echo "$want" > "$SYSROOT.tmp/.pkgs"
  rm -rf "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
  # the loader qemu needs, and the .so symlink the linker needs
  ls "$SYSROOT"/lib/ld-linux-*.so.* >/dev/null 2>&1 || die "no loader in $SYSROOT/lib"
  [ -e "$SYSROOT/usr/lib/$GNU/libasound.so" ] || die "no libasound.so in $SYSROOT"
}

# cross_env: exports what cargo, cc, pkg-config and bindgen need for $TRIPLE
cross_env() {
  local up t
  up=$(echo "$TRIPLE" | tr 'a-z-' 'A-Z_')
  t=${TRIPLE//-/_}
  export "CARGO_TARGET_${up}_LINKER=$GNU-gcc"
  export "CC_${t}=$GNU-gcc" "AR_${t}=$GNU-ar"
  export PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
  export PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/$GNU/pkgconfig:$SYSROOT/usr/share/pkgconfig"
  export "BINDGEN_EXTRA_CLANG_ARGS_${t}=--sysroot=/usr/$GNU -I/usr/$GNU/include"
  # libasound.so.2's own dependencies resolve inside the sysroot at link time
  export "CARGO_TARGET_${up}_RUSTFLAGS=-C link-arg=-Wl,-rpath-link,$SYSROOT/usr/lib/$GNU -C link-arg=-Wl,-rpath-link,$SYSROOT/lib/$GNU"
}

# report BIN: size, needed libs, GLIBC ceiling; fails above $GLIBC_MAX or $MAX_BYTES
report() {
  local bin=$1 size ceiling needed max=$MAX_BYTES
  [ "$DEB" != amd64 ] || max=$AMD64_MAX_BYTES
  size=$(stat -c %s "$bin")
  ceiling=$("$GNU-objdump" -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
  needed=$("$GNU-objdump" -p "$bin" | awk '/NEEDED/{print $2}' | tr '\n' ' ')
  log "$TRIPLE: $bin"
  log "  size: $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.2f", s/1048576}') MiB), $(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || true)"
  log "  needs: $needed"
  log "  highest GLIBC_ symbol version: $ceiling (limit $GLIBC_MAX, Raspberry Pi OS bookworm)"
  "$GNU-objdump" -h "$bin" | grep -q '\.debug_info' && die "$bin is not stripped"
  [ "$(printf '%s\n%s\n' "$ceiling" "$GLIBC_MAX" | sort -V | tail -1)" = "$GLIBC_MAX" ] ||
    die "$bin needs GLIBC_$ceiling > $GLIBC_MAX: it will not run on Raspberry Pi OS bookworm"
  [ "$size" -le "$max" ] || die "$bin is $size bytes > $max"
}

# native_env: the amd64 build uses the host's libraries; drop what cross_env may have exported
# for an earlier target of the same run
native_env() {
  unset PKG_CONFIG_ALLOW_CROSS PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
}

build_one() {
  arch_vars "$1"
  local t0 t1
  t0=$(date +%s)
  host_packages "$DEB"
  rust_target
  if [ "$DEB" = amd64 ]; then
    [ "$(uname -m)" = x86_64 ] || die "amd64 is built natively: this host is $(uname -m), not x86_64"
    native_env
  else
    sysroot
    cross_env
  fi
  t1=$(date +%s)
  log "building $TRIPLE (release, --locked)"
  (cd "$ROOT" && cargo build --release --locked --target "$TRIPLE")
  log "$TRIPLE: setup $((t1 - t0)) s, cargo build $(( $(date +%s) - t1 )) s"
  report "$ROOT/target/$TRIPLE/release/gemlive"
}

[ "${1:-}" = "--lib" ] && return 0 2>/dev/null
case "${1:-aarch64}" in
  all) build_one aarch64; build_one armv7 ;;
  -h|--help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) build_one "${1:-aarch64}" ;;
esac
log "ok"
