#!/usr/bin/env bash
# Builds the gemlive .deb for a Raspberry Pi target (cross) or amd64 (native), then checks it.
#
# usage: cross/deb.sh [aarch64|armv7|amd64|all]       (default: aarch64; all = aarch64 armv7)
#
#   1. cross/build.sh <target> (a no-op when the binary is up to date).
#   2. cargo-deb 3.8.0 (installed with `cargo install --locked` if `cargo deb` is missing),
#      driven by [package.metadata.deb] in Cargo.toml:
#        cargo deb --target <triple> --no-build --no-strip [--deb-version $DEB_VERSION]
#      (profile.release already strips)
#      -> target/<triple>/debian/gemlive_<version>-1_<arm64|armhf|amd64>.deb
#      Only a .deb of the same version is replaced there: other versions stay (upgrade tests).
#   3. prints `dpkg-deb -I` and `dpkg-deb -c`, and FAILS unless: the architecture and version are
#      right; Depends is exactly the one below; /etc/gemlive/gemlive.toml is the conffile; the
#      binary, unit, sysusers file, docs, changelog, man page and lintian overrides are where
#      they belong; debian/changelog's newest entry is the package's version; the man page names
#      every command of src/cli.rs; the maintainer scripts pass `sh -n`; the postinst creates the
#      user (systemd-sysusers), enables the unit without starting it, try-restarts it on upgrade
#      and prints the key message; the sysusers file is accepted by systemd-sysusers (run against
#      an empty --root, never the host).
#   4. lintian (Debian's, on the host; also for the arm64/armhf packages) with --pedantic,
#      --display-info, --display-experimental and --show-overrides: the whole output is printed,
#      and any E: or W: tag not overridden in debian/gemlive.lintian-overrides (shipped as
#      /usr/share/lintian/overrides/gemlive) FAILS the script, with lintian's explanation of it.
#   5. the install test (root): dpkg installs, upgrades, removes and purges it in a throwaway root.
#
# env: as cross/build.sh; CROSS_NO_INSTALL=1 also stops cargo-deb and lintian from being installed
#      (the script fails instead, saying what is missing).
#      DEB_VERSION  the package version, revision included (e.g. 0.1.0-2), for testing upgrades
#                   and repositories; default: Cargo.toml's version with revision 1. The newest
#                   debian/changelog entry may then differ (a note is printed).
#      DEB_OUT      directory for the .deb (default target/<triple>/debian)
# Prints the .deb's path last: `deb: built <path>`.
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

# lintian_tool: Debian's lintian on the host (installed like the other host packages)
lintian_tool() {
  if command -v lintian >/dev/null 2>&1; then return 0; fi
  [ -z "${CROSS_NO_INSTALL:-}" ] ||
    deb_fail "lintian is not installed (CROSS_NO_INSTALL set): apt-get install -y --no-install-recommends lintian"
  echo "deb: installing lintian (apt-get install --no-install-recommends lintian)"
  $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade lintian >/dev/null || {
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade lintian >/dev/null
  } || deb_fail "could not install lintian: apt-get install -y --no-install-recommends lintian"
}

# lint DEB: prints lintian's whole output (overrides and their comments included) and fails on
# any error or warning that is not overridden. Overridden tags are not counted: lintian's own
# --fail-on would count them once --show-overrides is given, so the tags are read here.
lint() {
  local deb=$1 t0 out rc=0 bad tag
  lintian_tool
  t0=$(date +%s)
  echo "---- lintian $(lintian --version | awk '{print $2}') --pedantic --display-info --display-experimental --show-overrides $(basename "$deb")"
  out=$(lintian --pedantic --display-info --display-experimental --show-overrides --fail-on none \
    "$deb" 2>&1) || rc=$?
  out=$(echo "$out" | grep -v '^running with root privileges is not recommended!$' || true)
  [ -z "$out" ] || echo "$out"
  [ "$rc" -eq 0 ] || deb_fail "lintian itself failed (exit $rc) on $deb"
  bad=$(echo "$out" | grep -E '^[EW]: ' || true)
  echo "deb: lintian $(basename "$deb"): $(echo "$out" | grep -c '^E: ' || true) errors, \
$(echo "$out" | grep -c '^W: ' || true) warnings, $(echo "$out" | grep -c '^I: ' || true) info, \
$(echo "$out" | grep -c '^P: ' || true) pedantic, $(echo "$out" | grep -c '^X: ' || true) experimental, \
$(echo "$out" | grep -c '^O: ' || true) overridden ($(( $(date +%s) - t0 )) s)"
  if [ -n "$bad" ]; then
    for tag in $(echo "$bad" | awk '{print $3}' | sort -u); do
      echo "---- lintian-explain-tags $tag"
      lintian-explain-tags "$tag" 2>/dev/null || true
    done
    deb_fail "lintian: errors or warnings that are not overridden (fix them, or add an override with
     a reason to debian/gemlive.lintian-overrides):
$bad"
  fi
}

# upstream_version: [package] version of Cargo.toml (the first `version =` line)
upstream_version() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1
}

deb_one() {
  build_one "$1"
  cargo_deb
  local t0 out deb tmp version changelog_version args=()
  t0=$(date +%s)
  out=${DEB_OUT:-$ROOT/target/$TRIPLE/debian}
  out=$(mkdir -p "$out" && cd "$out" && pwd)
  version=${DEB_VERSION:-$(upstream_version)-1}
  [ -z "${DEB_VERSION:-}" ] || args=(--deb-version "$DEB_VERSION")
  deb=$out/gemlive_${version#*:}_$DEB.deb
  rm -f "$deb"
  (cd "$ROOT" && cargo deb --target "$TRIPLE" --no-build --no-strip "${args[@]}" --output "$out/")
  [ -f "$deb" ] || deb_fail "cargo deb did not write $deb"
  echo "deb: $deb ($(stat -c %s "$deb") bytes, $(( $(date +%s) - t0 )) s)"
  echo "---- dpkg-deb -I"
  dpkg-deb -I "$deb"
  echo "---- dpkg-deb -c"
  dpkg-deb -c "$deb"
  echo "----"

  # the checks
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$DEB" ] || deb_fail "Architecture is not $DEB"
  [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] ||
    deb_fail "Version is '$(dpkg-deb -f "$deb" Version)', expected '$version'"
  # the synopsis is Cargo.toml's description, whole: cargo-deb wraps a longer one into the
  # extended description
  local synopsis
  synopsis=$(sed -n 's/^description = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
  [ "$(dpkg-deb -f "$deb" Description | head -n1)" = "$synopsis" ] && [ "${#synopsis}" -lt 80 ] ||
    deb_fail "the Description's first line is not Cargo.toml's description (keep that under 80 characters)"
  changelog_version=$(sed -n '1s/^gemlive (\([^)]*\)) .*/\1/p' "$ROOT/debian/changelog")
  if [ "$changelog_version" != "$version" ]; then
    [ -n "${DEB_VERSION:-}" ] ||
      deb_fail "debian/changelog's newest entry is '$changelog_version', the package is '$version': add an entry"
    echo "deb: note: DEB_VERSION=$DEB_VERSION, debian/changelog's newest entry is $changelog_version (fine for a test build; add an entry before publishing)"
  fi
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
           usr/lib/sysusers.d/gemlive.conf usr/lib/udev/rules.d/60-gemlive.rules usr/share/doc/gemlive/README.md usr/share/doc/gemlive/copyright \
           usr/share/doc/gemlive/changelog.Debian.gz usr/share/man/man1/gemlive.1.gz \
           usr/share/lintian/overrides/gemlive; do
    [ -f "$tmp/root/$f" ] || deb_fail "/$f is not in the package"
  done
  cmp -s "$tmp/root/usr/share/lintian/overrides/gemlive" "$ROOT/debian/gemlive.lintian-overrides" ||
    deb_fail "packaged lintian overrides differ from debian/gemlive.lintian-overrides"
  # the man page names every command the binary knows (src/cli.rs, COMMANDS)
  local cmd
  for cmd in $(sed -n '/^const COMMANDS: &str =/{n;p}' "$ROOT/src/cli.rs" | tr -d '";,' | sed 's/ or / /'); do
    zgrep -Eq "^\.B $cmd( |\$)" "$tmp/root/usr/share/man/man1/gemlive.1.gz" ||
      deb_fail "the man page (debian/gemlive.1) does not describe the command '$cmd' (src/cli.rs)"
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
  echo "deb: checks passed: Architecture $DEB; Version $version; Depends; conffile /etc/gemlive/gemlive.toml; files; changelog; man page; maintainer scripts; sysusers -> $(grep '^gemlive:' "$tmp/sysroot/etc/passwd" | cut -d: -f1,3,4,6,7) in audio,video,gpio"
  lint "$deb"
  install_test "$deb"
  echo "deb: built $deb"
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
  # no DEBIAN/md5sums (lintian override no-md5sums-control-file): dpkg records them itself
  grep -q ' usr/bin/gemlive$' "$r/var/lib/dpkg/info/gemlive.md5sums" || deb_fail "install: dpkg recorded no md5sums"
  out=$(dpkg --root="$r" --verify gemlive) && [ -z "$out" ] || { echo "$out"; deb_fail "install: dpkg --verify"; }
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
  echo "deb: install test passed (dpkg --root in a throwaway root): user gemlive in audio,video,gpio; unit enabled, not started; key message; md5sums recorded, dpkg --verify clean; upgrade keeps the edited conffile; remove; purge"
}

case "${1:-aarch64}" in
  all) deb_one aarch64; deb_one armv7 ;;
  -h|--help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) deb_one "${1:-aarch64}" ;;
esac
