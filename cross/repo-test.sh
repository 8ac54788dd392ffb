#!/usr/bin/env bash
# Proves that a repository made by cross/repo.sh works with the real apt, without touching the
# host's apt configuration, lists, cache or dpkg database.
#
# usage: cross/repo-test.sh
#
# Phases (each timed; the times are printed at the end):
#   debs     the amd64 .deb of Cargo.toml's version (target/x86_64-unknown-linux-gnu/debian/
#            gemlive_<version>-1_amd64.deb; built with `cross/deb.sh amd64` if missing), and the
#            arm64 and armhf ones when they have been built.
#   repo-1   cross/repo.sh with --throwaway-key (a new ed25519 key in a private GnuPG home).
#   apt-1    `apt-get update --error-on=any` with a private APT_CONFIG: its own sources (one deb822
#            file, `URIs: file:<repo>`, `Signed-By: <repo>/gemlive-archive-keyring.gpg`), lists,
#            cache, state, an empty trusted.gpg.d (so only Signed-By can verify) and
#            APT::Architectures amd64 arm64 armhf. Then `apt-cache policy gemlive` must show
#            the version as candidate from the repository (and gemlive:arm64 / gemlive:armhf when
#            those were added), and `apt-get -s install gemlive` against a made-up dpkg status
#            that has its dependencies must install that version.
#   tamper   each must make `apt-get update` (plain, fresh lists) fail with the error named:
#            InRelease changed after signing (BADSIG); Release changed, with InRelease removed
#            so apt falls back to Release + Release.gpg (BADSIG); Signed-By naming another key
#            (NO_PUBKEY); Packages and Packages.gz changed (hash mismatch against the signed
#            Release).
#            The repository is restored after each.
#   deb-2    DEB_VERSION=<version>-2 DEB_OUT=<work dir> cross/deb.sh amd64 (the .deb's own checks,
#            lintian and install test included; target/ keeps only the first version).
#   repo-2   the new .deb added to the same repository with the same key.
#   apt-2    update again: the pool holds both versions, apt-cache policy lists both, the new
#            one is the candidate, and `apt-get -s upgrade` from a status with the first one
#            installed upgrades it.
#
# env: KEEP=1  keep the work directory (printed) for a look at the repository and apt's files.
#      CROSS_NO_INSTALL=1  as in the other cross/ scripts.
# Host packages: apt (apt-get, apt-cache), apt-utils, gnupg, gpgv (repo.sh installs what is
# missing unless CROSS_NO_INSTALL=1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export LC_ALL=C
log() { echo "repo-test: $*"; }
die() { echo "repo-test: FAILED: $*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/gemlive-repo-test.XXXXXX)
chmod 755 "$WORK"  # apt reads file: URIs as its sandbox user _apt
cleanup() {
  if [ -n "${KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PHASES=()
T=$(date +%s.%N) T0=$T
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b - a}'; }
phase_end() { # NAME: the time since the previous phase ended
  local now
  now=$(date +%s.%N)
  PHASES+=("$1 $(secs "$T" "$now") s,")
  log "phase $1: $(secs "$T" "$now") s"
  T=$now
}

# ---- debs
UP=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
V1=$UP-1 V2=$UP-2
AMD64=$ROOT/target/x86_64-unknown-linux-gnu/debian/gemlive_${V1}_amd64.deb
if [ ! -f "$AMD64" ]; then
  log "no $AMD64: cross/deb.sh amd64"
  bash "$HERE/deb.sh" amd64
fi
[ -f "$AMD64" ] || die "cross/deb.sh amd64 made no $AMD64"
DEBS=("$AMD64")
FOREIGN=()
for a in aarch64-unknown-linux-gnu:arm64 armv7-unknown-linux-gnueabihf:armhf; do
  f=$ROOT/target/${a%%:*}/debian/gemlive_${V1}_${a##*:}.deb
  if [ -f "$f" ]; then DEBS+=("$f"); FOREIGN+=("${a##*:}"); fi
done
log "version 1: ${DEBS[*]}"
phase_end debs

# ---- repo-1
REPO=$WORK/repo KEYDIR=$WORK/key
bash "$HERE/repo.sh" "$REPO" --throwaway-key "$KEYDIR" "${DEBS[@]}"
phase_end repo-1

# ---- the private apt
A=$WORK/apt
mkdir -p "$A/sources" "$A/lists/partial" "$A/cache/archives/partial" "$A/state" "$A/trusted" "$A/prefs"
: > "$A/status"
sources() { # KEYRING: the one sources file
  cat > "$A/sources/gemlive.sources" <<EOF
Types: deb
URIs: file:$REPO
Suites: stable
Components: main
Signed-By: $1
EOF
}
sources "$REPO/gemlive-archive-keyring.gpg"
cat > "$A/apt.conf" <<EOF
// cross/repo-test.sh: nothing of the host's apt state is used or written
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$A/sources";
Dir::Etc::Trusted "/dev/null";
Dir::Etc::TrustedParts "$A/trusted";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$A/prefs";
Dir::State "$A/state";
Dir::State::Lists "$A/lists";
Dir::State::status "$A/status";
Dir::Cache "$A/cache";
Debug::NoLocking "true";
Acquire::Languages "none";
APT::Architectures { "amd64"; "arm64"; "armhf"; };
EOF
export APT_CONFIG=$A/apt.conf
# made-up dpkg status: gemlive's dependencies are installed (for the simulated install)
fake_status() {
  local p v
  for p in libasound2:1.2.8-1 libc6:2.36-9 systemd:252.30-1; do
    v=${p#*:}; p=${p%%:*}
    printf 'Package: %s\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 1\nMaintainer: none <none@invalid>\nArchitecture: amd64\nVersion: %s\nDescription: made up for cross/repo-test.sh\n\n' "$p" "$v"
  done
}

# update [ARGS]: apt-get update; its output in $WORK/update.out
update() {
  apt-get "$@" update > "$WORK/update.out" 2>&1
}
policy() { apt-cache policy "$@"; }

# ---- apt-1
update --error-on=any || { cat "$WORK/update.out"; die "apt-get update of the new repository failed"; }
cat "$WORK/update.out"
out=$(policy gemlive)
echo "$out"
echo "$out" | grep -q "^  Candidate: $V1$" || die "apt-cache policy: candidate is not $V1"
echo "$out" | grep -q "500 file:$REPO stable/main amd64 Packages" || die "apt-cache policy: not from the repository"
for a in "${FOREIGN[@]}"; do
  out=$(policy "gemlive:$a")
  echo "$out"
  echo "$out" | grep -q "^  Candidate: $V1$" || die "apt-cache policy gemlive:$a: candidate is not $V1"
done
fake_status > "$WORK/status-sim"
out=$(apt-get -s -o Dir::State::status="$WORK/status-sim" install gemlive 2>&1) || { echo "$out"; die "apt-get -s install gemlive"; }
echo "$out" | grep '^Inst ' || true
echo "$out" | grep -q "^Inst gemlive ($V1 " || { echo "$out"; die "apt-get -s install does not install $V1"; }
log "apt sees gemlive $V1 (amd64${FOREIGN[*]:+, ${FOREIGN[*]}}) in the signed repository"
phase_end apt-1

# ---- tamper: each case with fresh lists, the repository restored afterwards
D=$REPO/dists/stable
cp -a "$D" "$WORK/dists.good"
restore() { rm -rf "$D" && cp -a "$WORK/dists.good" "$D"; sources "$REPO/gemlive-archive-keyring.gpg"; }
must_fail() { # WHAT PATTERN
  local lists=$WORK/lists-tamper
  rm -rf "$lists" && mkdir -p "$lists/partial"
  if update -o Dir::State::Lists="$lists"; then
    cat "$WORK/update.out"
    die "$1: apt-get update succeeded"
  fi
  grep -Eq "$2" "$WORK/update.out" || { cat "$WORK/update.out"; die "$1: apt-get update failed without /$2/"; }
  log "$1: apt-get update fails: $(grep -Eo "$2.{0,60}" "$WORK/update.out" | head -n1)"
  restore
}
sed -i 's/^Label: gemlive$/Label: gemlive-tampered/' "$D/InRelease"
must_fail "InRelease changed after signing" 'signatures were invalid: BADSIG'
rm "$D/InRelease"
sed -i 's/^Label: gemlive$/Label: gemlive-tampered/' "$D/Release"
must_fail "Release changed (InRelease removed: Release + Release.gpg)" 'signatures were invalid: BADSIG'
OTHER=$WORK/otherkey
mkdir -m 700 "$OTHER"
gpg --homedir "$OTHER" --batch --quiet --passphrase '' --quick-generate-key "other <other@gemlive.invalid>" ed25519 sign never
gpg --homedir "$OTHER" --batch --export > "$WORK/other.gpg"
gpgconf --homedir "$OTHER" --kill gpg-agent 2>/dev/null || true
sources "$WORK/other.gpg"
must_fail "Signed-By names another key" 'NO_PUBKEY'
sed -i 's/^Priority: optional$/Priority: required/' "$D/main/binary-amd64/Packages"
gzip -9n < "$D/main/binary-amd64/Packages" > "$D/main/binary-amd64/Packages.gz"
must_fail "Packages changed (not what the signed Release lists)" 'Hash Sum mismatch|File has unexpected size'
phase_end tamper

# ---- deb-2: the next version, built into the work directory
DEB_VERSION=$V2 DEB_OUT=$WORK/debs bash "$HERE/deb.sh" amd64
AMD64_2=$WORK/debs/gemlive_${V2}_amd64.deb
[ -f "$AMD64_2" ] || die "cross/deb.sh made no $AMD64_2"
phase_end deb-2

# ---- repo-2
bash "$HERE/repo.sh" "$REPO" --throwaway-key "$KEYDIR" "$AMD64_2"
for v in "$V1" "$V2"; do
  [ -f "$REPO/pool/main/g/gemlive/gemlive_${v}_amd64.deb" ] || die "the pool lacks gemlive_${v}_amd64.deb"
done
phase_end repo-2

# ---- apt-2
update --error-on=any || { cat "$WORK/update.out"; die "apt-get update after adding $V2 failed"; }
cat "$WORK/update.out"
out=$(policy gemlive)
echo "$out"
echo "$out" | grep -q "^  Candidate: $V2$" || die "apt-cache policy: the candidate is not $V2"
echo "$out" | grep -Eq "^ +$V1 500$" || die "apt-cache policy: $V1 is no longer listed"
{ fake_status; dpkg-deb -f "$AMD64" | sed '/^Package:/a Status: install ok installed'; echo; } > "$WORK/status-sim"
out=$(apt-get -s -o Dir::State::status="$WORK/status-sim" upgrade 2>&1) || { echo "$out"; die "apt-get -s upgrade"; }
echo "$out" | grep '^Inst ' || true
echo "$out" | grep -q "^Inst gemlive \[$V1\] ($V2 " || { echo "$out"; die "apt-get -s upgrade does not take gemlive $V1 to $V2"; }
log "after adding $V2: the pool keeps $V1, the candidate is $V2, apt upgrade takes $V1 to $V2"
phase_end apt-2

# the host's apt never saw the test repository
if compgen -G "/var/lib/apt/lists/*gemlive-repo-test*" >/dev/null; then die "the host's apt lists name the test repository"; fi
! grep -rqs gemlive-repo-test /etc/apt || die "/etc/apt names the test repository"
log "phases: ${PHASES[*]} total $(secs "$T0" "$(date +%s.%N)") s"
log "ok"
