#!/usr/bin/env bash
# Builds the gemlive .deb for a Raspberry Pi target from the cross-built binary, then checks it.
#
# usage: cross/deb.sh [aarch64|armv7|all]       (default: aarch64)
#
#   1. cross/build.sh <target> (a no-op when the binary is up to date).
#   2. cargo-deb 3.8.0 (installed with `cargo install --locked` if `cargo deb` is missing),
#      driven by [package.metadata.deb] in Cargo.toml:
#        cargo deb --target <triple> --no-build --no-strip    (profile.release already strips)
#      -> target/<triple>/debian/gemlive_<version>-1_<arm64|armhf>.deb
#   3. prints `dpkg-deb -I` and `dpkg-deb -c`, and FAILS unless: the architecture is right; Depends
#      is exactly the one below; /etc/gemlive/gemlive.toml is the conffile; the binary, unit,
#      sysusers file and docs are where they belong; the maintainer scripts pass `sh -n`; the
#      postinst creates the user (systemd-sysusers), enables the unit without starting it and
#      prints the key message; the sysusers file is accepted by systemd-sysusers (run against an
#      empty --root, never the host).
#
# env: as cross/build.sh; CROSS_NO_INSTALL=1 also stops cargo-deb from being installed.
# shellcheck disable=SC2015  # `A && B || fail` is meant: fail unless both hold
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/build.sh
. "$HERE/build.sh" --lib
CARGO_DEB_VERSION=3.8.0
WANT_DEPENDS="libasound2 (>= 1.2.4) | libasound2t64, libc6 (>= 2.34), systemd | systemd-standalone-sysusers | systemd-sysusers"

TMPS=()
trap 'rm -rf "${TMPS[@]}"' EXIT
deb_fail() { echo "deb: FAILED: $1" >&2; exit 1; }

cargo_deb() {
  if cargo deb --version >/dev/null 2>&1; then return 0; fi
  [ -z "${CROSS_NO_INSTALL:-}" ] || deb_fail "cargo-deb missing (CROSS_NO_INSTALL set)"
  echo "deb: installing cargo-deb $CARGO_DEB_VERSION (a few minutes)"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
}

deb_one() {
  build_one "$1"
  cargo_deb
  local t0 out deb tmp
  t0=$(date +%s)
  out=$ROOT/target/$TRIPLE/debian
  rm -f "$out"/gemlive_*.deb
  (cd "$ROOT" && cargo deb --target "$TRIPLE" --no-build --no-strip --output "$out/")
  deb=$(ls "$out"/gemlive_*_"$DEB".deb)
  echo "deb: $deb ($(stat -c %s "$deb") bytes, $(( $(date +%s) - t0 )) s)"
  echo "---- dpkg-deb -I"
  dpkg-deb -I "$deb"
  echo "---- dpkg-deb -c"
  dpkg-deb -c "$deb"
  echo "----"

  # the checks
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$DEB" ] || deb_fail "Architecture is not $DEB"
  [ "$(dpkg-deb -f "$deb" Depends)" = "$WANT_DEPENDS" ] ||
    deb_fail "Depends is '$(dpkg-deb -f "$deb" Depends)', expected '$WANT_DEPENDS'"
  tmp=$(mktemp -d)
  TMPS+=("$tmp")
  dpkg-deb -e "$deb" "$tmp/DEBIAN"
  dpkg-deb -x "$deb" "$tmp/root"
  [ "$(cat "$tmp/DEBIAN/conffiles")" = "/etc/gemlive/gemlive.toml" ] ||
    deb_fail "conffiles is '$(cat "$tmp/DEBIAN/conffiles")', expected /etc/gemlive/gemlive.toml"
  local f
  for f in usr/bin/gemlive etc/gemlive/gemlive.toml usr/lib/systemd/system/gemlive.service \
           usr/lib/sysusers.d/gemlive.conf usr/share/doc/gemlive/README.md usr/share/doc/gemlive/copyright; do
    [ -f "$tmp/root/$f" ] || deb_fail "/$f is not in the package"
  done
  cmp -s "$tmp/root/usr/bin/gemlive" "$ROOT/target/$TRIPLE/release/gemlive" || deb_fail "packaged binary differs from the build"
  cmp -s "$tmp/root/usr/lib/systemd/system/gemlive.service" "$ROOT/systemd/gemlive.service" || deb_fail "packaged unit differs from systemd/gemlive.service"
  cmp -s "$tmp/root/etc/gemlive/gemlive.toml" "$ROOT/config/gemlive.toml" || deb_fail "packaged config differs from config/gemlive.toml"
  [ "$(stat -c %a "$tmp/root/usr/bin/gemlive")" = 755 ] || deb_fail "/usr/bin/gemlive is not 755"
  for f in "$tmp"/DEBIAN/{preinst,postinst,prerm,postrm}; do
    [ -e "$f" ] || continue
    sh -n "$f" || deb_fail "$(basename "$f") has a syntax error"
  done
  local pi=$tmp/DEBIAN/postinst
  [ "$(grep -c '^ *systemd-sysusers .*gemlive.conf' "$pi")" = 1 ] || deb_fail "postinst does not run systemd-sysusers exactly once"
  grep -q 'deb-systemd-helper enable gemlive.service' "$pi" || deb_fail "postinst does not enable gemlive.service"
  grep -q 'try-restart gemlive.service' "$pi" || deb_fail "postinst does not try-restart on upgrade"
  ! grep -Eq 'deb-systemd-invoke (start|restart) ' "$pi" || deb_fail "postinst starts the service"
  grep -q 'NOT started' "$pi" || deb_fail "postinst lacks the 'not started' message"
  ! grep -q '#DEBHELPER#' "$pi" || deb_fail "#DEBHELPER# was not replaced"
  # The sysusers file, applied to an empty root (the host is never touched).
  mkdir -p "$tmp/sysroot/etc"
  systemd-sysusers --root="$tmp/sysroot" "$tmp/root/usr/lib/sysusers.d/gemlive.conf" 2>&1 | sed 's/^/deb: sysusers: /'
  grep -q '^gemlive:' "$tmp/sysroot/etc/passwd" || deb_fail "systemd-sysusers did not create the gemlive user"
  for g in audio video gpio; do
    grep -Eq "^$g:[^:]*:[0-9]+:(.*,)?gemlive(,|$)" "$tmp/sysroot/etc/group" || deb_fail "gemlive is not in group $g"
  done
  echo "deb: checks passed: Architecture $DEB; Depends; conffile /etc/gemlive/gemlive.toml; files; maintainer scripts; sysusers -> $(grep '^gemlive:' "$tmp/sysroot/etc/passwd" | cut -d: -f1,3,4,6,7) in audio,video,gpio"
  install_test "$deb"
}

# install_test DEB: the real dpkg installs, upgrades, removes and purges the package in an empty
# throwaway root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT set, which
# systemd-sysusers and deb-systemd-helper honour). It runs in a private mount namespace with an
# empty /run, so the scripts see no running systemd and never call systemctl on this host.
install_test() {
  local deb=$1 r out
  if [ "$(id -u)" -ne 0 ] || ! unshare --mount true 2>/dev/null; then
    echo "deb: install test SKIPPED (needs root and unshare --mount)"
    return 0
  fi
  r=$(mktemp -d)
  TMPS+=("$r")
  mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates"
  touch "$r/var/lib/dpkg/status" "$r/var/lib/dpkg/available"
  dpkg_r() {
    unshare --mount --propagation private sh -c 'mount -t tmpfs none /run && exec "$@"' sh \
      dpkg --root="$r" --log=/dev/null --force-script-chrootless --force-depends \
      --force-architecture --force-confold "$@" 2>&1
  }
  out=$(dpkg_r -i "$deb") || { echo "$out"; deb_fail "dpkg -i into a throwaway root failed"; }
  echo "$out" | grep -q 'enabled, but NOT started' || { echo "$out"; deb_fail "install: no 'not started' message"; }
  grep -q '^gemlive:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$r/etc/passwd" || deb_fail "install: no gemlive user"
  for g in audio video gpio; do
    grep -Eq "^$g:[^:]*:[0-9]+:(.*,)?gemlive(,|$)" "$r/etc/group" || deb_fail "install: gemlive not in group $g"
  done
  [ "$(readlink "$r/etc/systemd/system/multi-user.target.wants/gemlive.service")" = /usr/lib/systemd/system/gemlive.service ] ||
    deb_fail "install: gemlive.service is not enabled"
  dpkg --root="$r" -s gemlive | grep -q '^ /etc/gemlive/gemlive.toml [0-9a-f]\{32\}$' || deb_fail "install: conffile not registered"
  # upgrade (same version again) with a key in place and an edited config: no message, config kept
  install -m 600 /dev/null "$r/etc/gemlive/api-key"
  echo '# local edit' >> "$r/etc/gemlive/gemlive.toml"
  out=$(dpkg_r -i "$deb") || { echo "$out"; deb_fail "upgrade failed"; }
  ! echo "$out" | grep -q 'NOT started' || deb_fail "upgrade: 'not started' message although the key exists"
  grep -q '^# local edit$' "$r/etc/gemlive/gemlive.toml" || deb_fail "upgrade: the edited conffile was replaced"
  out=$(dpkg_r -r gemlive) || { echo "$out"; deb_fail "dpkg -r failed"; }
  [ ! -e "$r/usr/bin/gemlive" ] && [ -e "$r/etc/gemlive/gemlive.toml" ] || deb_fail "remove: wrong files left"
  out=$(dpkg_r -P gemlive) || { echo "$out"; deb_fail "dpkg -P failed"; }
  [ ! -e "$r/etc/gemlive/gemlive.toml" ] && [ ! -e "$r/etc/systemd/system/multi-user.target.wants/gemlive.service" ] ||
    deb_fail "purge: conffile or enablement symlink left"
  echo "deb: install test passed (dpkg --root in a throwaway root): user gemlive in audio,video,gpio; unit enabled, not started; key message; upgrade keeps the edited conffile; remove; purge"
}

case "${1:-aarch64}" in
  all) deb_one aarch64; deb_one armv7 ;;
  *) deb_one "${1:-aarch64}" ;;
esac
