#!/bin/bash
# The packages tests/vm_systemd.rs installs in the guest, written into its share dir:
#   SHARE/<the .deb>   what `apt install ./…deb` gets
#   SHARE/repo1        a signed apt repository (cross/repo.sh, throwaway key) holding that .deb
#   SHARE/repo2        the same repository after the next release: the .deb plus a newer build
#                      of it (revision + 1), signed with the same key
# usage: packages.sh SHARE DEB
set -euo pipefail
SHARE=${1:?usage: packages.sh SHARE DEB}
DEB=${2:?usage: packages.sh SHARE DEB}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$DEB" "$SHARE/"
v=$(dpkg-deb -f "$DEB" Version)
arch=$(dpkg-deb -f "$DEB" Architecture)
v2="${v%-*}-$(( ${v##*-} + 1 ))"
# The newer release: the same files under the next revision (what matters to apt and dpkg is
# the version: the upgrade runs the new package's maintainer scripts and restarts the service).
dpkg-deb -R "$DEB" "$tmp/pkg"
sed -i "s/^Version: .*/Version: $v2/" "$tmp/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -b "$tmp/pkg" "$tmp/gemlive_${v2}_$arch.deb" >/dev/null
echo "packages: $(basename "$DEB") and a newer gemlive_${v2}_$arch.deb"
bash "$ROOT/cross/repo.sh" "$SHARE/repo1" --throwaway-key "$tmp/gnupg" "$DEB"
cp -a "$SHARE/repo1" "$SHARE/repo2"
bash "$ROOT/cross/repo.sh" "$SHARE/repo2" --throwaway-key "$tmp/gnupg" "$tmp/gemlive_${v2}_$arch.deb"
