#!/usr/bin/env bash
# Builds (or updates) a signed apt repository of gemlive .debs, ready to publish as static files.
#
# usage: cross/repo.sh OUTDIR KEY-OPTION [options] DEB...
#        (no DEB: the indexes of the existing pool are rewritten and signed again, e.g. with a
#        new key)
#
#   KEY-OPTION, exactly one of:
#     --key KEYID        sign with this secret key from the GnuPG home of --gnupghome DIR, else
#                        $GNUPGHOME, else ~/.gnupg (the only case that reads ~/.gnupg: naming a
#                        key without a home asks for it). Only read; nothing is written there.
#     --key FILE         an exported secret key (`gpg --export-secret-keys [--armor] KEYID`),
#                        imported into a private temporary GnuPG home, deleted at the end.
#     --throwaway-key DIR  tests: a private GnuPG home in DIR (created 0700); on first use it gets
#                        a new ed25519 signing key without a passphrase, later runs reuse it, so
#                        a repository can be updated with the same key.
#   --gnupghome DIR      the GnuPG home for --key KEYID
#   --passphrase-file F  passphrase of a protected key (gpg --pinentry-mode loopback)
#   --suite NAME         Suite and Codename (default stable)
#   --component NAME     (default main)
#   --archs "A B.."      architectures the repository has indexes for (default "amd64 arm64
#                        armhf"); a .deb of any other architecture is refused
#   --origin NAME        Origin and Label of the Release file (default gemlive)
#
# What it does:
#   1. copies each DEB to OUTDIR/pool/<component>/<p>/<package>/ (p = first letter; "libx" for
#      lib* packages) under its canonical name <package>_<version>_<arch>.deb. Packages already
#      in the pool stay: older versions remain installable, and apt picks the newest. The same
#      name with different contents is refused (clients may have cached its hash): bump the
#      version (cross/deb.sh takes DEB_VERSION).
#   2. for each architecture: `apt-ftparchive packages` over the whole pool (every version;
#      Architecture: all packages go into every binary-<arch>) ->
#      dists/<suite>/<component>/binary-<arch>/Packages and Packages.gz;
#   3. `apt-ftparchive release` -> dists/<suite>/Release (Origin, Label, Suite, Codename, Date,
#      Architectures, Components, MD5Sum/SHA1/SHA256/SHA512 of the indexes), then gpg makes
#      InRelease (clearsigned) and Release.gpg (detached, armored) with the key. The new dists/
#      tree is built beside the old one and swapped in at the end.
#   4. exports the public key, binary (what apt's Signed-By wants for a .gpg file), to
#      OUTDIR/gemlive-archive-keyring.gpg, and prints its fingerprint and the deb822 stanza.
#   Then `gpgv` checks InRelease and Release.gpg against that keyring.
#
# Layout:  OUTDIR/gemlive-archive-keyring.gpg
#          OUTDIR/pool/main/g/gemlive/gemlive_<version>_<arch>.deb
#          OUTDIR/dists/stable/{Release,InRelease,Release.gpg}
#          OUTDIR/dists/stable/main/binary-{amd64,arm64,armhf}/Packages{,.gz}
# Publish OUTDIR as it is (any static web server, e.g. rsync to https://apt.example.org/gemlive);
# a client needs:  Types: deb / URIs: <url> / Suites: stable / Components: main /
#                  Signed-By: /etc/apt/keyrings/gemlive-archive-keyring.gpg
# Not safe to run twice at once on the same OUTDIR. Host packages: apt-utils (apt-ftparchive),
# gnupg (gpg, gpg-agent), gpgv; installed when missing unless CROSS_NO_INSTALL=1.
# Why apt-ftparchive: it is apt's own tool (apt-utils), needs no database or daemon, keeps
# every version in the pool, and writes indexes that apt reads back; reprepro and aptly keep a
# database beside the files and, by default, one version per package and suite.
set -euo pipefail
export LC_ALL=C
log() { echo "repo: $*"; }
die() { echo "repo: FAILED: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

OUT="" KEY="" THROWAWAY="" HOME_DIR="" PASSFILE="" SUITE=stable COMPONENT=main
ARCHS="amd64 arm64 armhf" ORIGIN=gemlive
DEBS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --key) KEY=${2:?--key needs a key id or file}; shift 2 ;;
    --throwaway-key) THROWAWAY=${2:?--throwaway-key needs a directory}; shift 2 ;;
    --gnupghome) HOME_DIR=${2:?--gnupghome needs a directory}; shift 2 ;;
    --passphrase-file) PASSFILE=$(realpath "${2:?}"); shift 2 ;;
    --suite) SUITE=${2:?}; shift 2 ;;
    --component) COMPONENT=${2:?}; shift 2 ;;
    --archs) ARCHS=${2:?}; shift 2 ;;
    --origin) ORIGIN=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; DEBS+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) if [ -z "$OUT" ]; then OUT=$1; else DEBS+=("$1"); fi; shift ;;
  esac
done
[ -n "$OUT" ] || { usage >&2; die "no OUTDIR"; }
[ -n "$KEY" ] || [ -n "$THROWAWAY" ] || die "no key: --key KEYID|FILE or --throwaway-key DIR"
[ -z "$KEY" ] || [ -z "$THROWAWAY" ] || die "--key and --throwaway-key exclude each other"
[ "${#DEBS[@]}" -gt 0 ] || [ -d "$OUT/pool" ] || die "no .deb given and no pool in $OUT yet"

tools() {
  local missing=()
  command -v apt-ftparchive >/dev/null || missing+=(apt-utils)
  command -v gpg >/dev/null && command -v gpg-agent >/dev/null || missing+=(gnupg)
  command -v gpgv >/dev/null || missing+=(gpgv)
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ -z "${CROSS_NO_INSTALL:-}" ] || die "missing host packages (CROSS_NO_INSTALL set): ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing host packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
}
tools

TMPS=() AGENT_HOMES=()
cleanup() {
  local h
  for h in "${AGENT_HOMES[@]}"; do gpgconf --homedir "$h" --kill gpg-agent 2>/dev/null || true; done
  rm -rf "${TMPS[@]}"
}
trap cleanup EXIT
tmp=$(mktemp -d)
TMPS+=("$tmp")

secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }

# ---- the key: GNUPGHOME for gpg, FPR = the signing key's fingerprint
t0=$(date +%s.%N)
GPG_OPTS=(--batch --no-tty --quiet)
if [ -n "$PASSFILE" ]; then
  GPG_OPTS+=(--pinentry-mode loopback --passphrase-file "$PASSFILE")
fi
if [ -n "$THROWAWAY" ]; then
  mkdir -p "$THROWAWAY"
  chmod 700 "$THROWAWAY"
  export GNUPGHOME
  GNUPGHOME=$(cd "$THROWAWAY" && pwd)
  AGENT_HOMES+=("$GNUPGHOME")
  if ! gpg "${GPG_OPTS[@]}" --list-secret-keys --with-colons 2>/dev/null | grep -q '^sec:'; then
    log "throwaway key: generating an ed25519 signing key in $GNUPGHOME (no passphrase)"
    gpg "${GPG_OPTS[@]}" --passphrase '' --quick-generate-key \
      "gemlive test archive (throwaway) <throwaway@gemlive.invalid>" ed25519 sign never
  fi
  KEY=$(gpg "${GPG_OPTS[@]}" --list-secret-keys --with-colons | awk -F: '/^fpr:/{print $10; exit}')
elif [ -f "$KEY" ]; then
  export GNUPGHOME=$tmp/gnupg
  mkdir -m 700 "$GNUPGHOME"
  AGENT_HOMES+=("$GNUPGHOME")
  gpg "${GPG_OPTS[@]}" --import "$KEY" 2>&1 | sed 's/^/repo: gpg: /'
  KEY=$(gpg "${GPG_OPTS[@]}" --list-secret-keys --with-colons | awk -F: '/^fpr:/{print $10; exit}')
  [ -n "$KEY" ] || die "no secret key in the key file"
elif [ -n "$HOME_DIR" ]; then
  export GNUPGHOME
  GNUPGHOME=$(cd "$HOME_DIR" && pwd)
fi
FPR=$(gpg "${GPG_OPTS[@]}" --list-secret-keys --with-colons -- "$KEY" 2>/dev/null | awk -F: '/^fpr:/{print $10; exit}') ||
  true
[ -n "$FPR" ] || die "no secret key '$KEY' in ${GNUPGHOME:-~/.gnupg}"
t_key=$(secs "$t0")

# ---- 1. the pool
t0=$(date +%s.%N)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
added=()
for deb in "${DEBS[@]}"; do
  [ -f "$deb" ] || die "$deb: no such file"
  pkg=$(dpkg-deb -f "$deb" Package) || die "$deb is not a .deb"
  ver=$(dpkg-deb -f "$deb" Version)
  arch=$(dpkg-deb -f "$deb" Architecture)
  [ "$arch" = all ] || [[ " $ARCHS " == *" $arch "* ]] || die "$deb: architecture $arch is not one of: $ARCHS"
  case "$pkg" in lib?*) p=${pkg:0:4} ;; *) p=${pkg:0:1} ;; esac
  dir=$OUT/pool/$COMPONENT/$p/$pkg
  dest=$dir/${pkg}_${ver#*:}_$arch.deb
  mkdir -p "$dir"
  if [ -e "$dest" ]; then
    cmp -s "$deb" "$dest" ||
      die "$dest exists with other contents: a version is published once; build a new one (e.g. DEB_VERSION=${ver%-*}-<n+1> cross/deb.sh ...)"
    log "already in the pool: ${dest#"$OUT"/}"
  else
    cp "$deb" "$dest.tmp" && chmod 644 "$dest.tmp" && mv "$dest.tmp" "$dest"
    added+=("${dest#"$OUT"/}")
    log "added: ${dest#"$OUT"/}"
  fi
done

# ---- 2. + 3. indexes, Release, signatures: in dists/.new-<suite>, then swapped in
new=$OUT/dists/.new-$SUITE
rm -rf "$new"
TMPS+=("$new")
cd "$OUT"
for arch in $ARCHS; do
  bdir=$new/$COMPONENT/binary-$arch
  mkdir -p "$bdir"
  # paths in Filename: are relative to OUTDIR, the repository's root
  apt-ftparchive --arch "$arch" packages "pool/$COMPONENT" > "$bdir/Packages" 2> "$tmp/ftparchive.err" ||
    { cat "$tmp/ftparchive.err" >&2; die "apt-ftparchive packages ($arch)"; }
  if grep -q . "$tmp/ftparchive.err"; then sed 's/^/repo: apt-ftparchive: /' "$tmp/ftparchive.err"; fi
  gzip -9n < "$bdir/Packages" > "$bdir/Packages.gz"
done
t_index=$(secs "$t0")
t0=$(date +%s.%N)
R=APT::FTPArchive::Release
apt-ftparchive \
  -o "$R::Origin=$ORIGIN" -o "$R::Label=$ORIGIN" -o "$R::Suite=$SUITE" -o "$R::Codename=$SUITE" \
  -o "$R::Architectures=$ARCHS" -o "$R::Components=$COMPONENT" \
  -o "$R::Description=gemlive packages for Raspberry Pi OS and Debian (bookworm and later)" \
  release "$new" > "$tmp/Release"
mv "$tmp/Release" "$new/Release"
gpg "${GPG_OPTS[@]}" --yes --local-user "$FPR!" --digest-algo SHA512 --clearsign \
  --output "$new/InRelease" "$new/Release"
gpg "${GPG_OPTS[@]}" --yes --local-user "$FPR!" --digest-algo SHA512 --armor --detach-sign \
  --output "$new/Release.gpg" "$new/Release"
gpg "${GPG_OPTS[@]}" --export --export-options export-minimal "$FPR" > "$tmp/keyring.gpg"
[ -s "$tmp/keyring.gpg" ] || die "could not export the public key $FPR"
# the signatures as apt will check them: gpgv against the exported keyring alone
gpgv --keyring "$tmp/keyring.gpg" "$new/InRelease" 2> "$tmp/gpgv.err" ||
  { cat "$tmp/gpgv.err" >&2; die "gpgv rejects InRelease"; }
gpgv --keyring "$tmp/keyring.gpg" "$new/Release.gpg" "$new/Release" 2> "$tmp/gpgv.err" ||
  { cat "$tmp/gpgv.err" >&2; die "gpgv rejects Release.gpg"; }
chmod -R a+rX "$new"
cp "$tmp/keyring.gpg" "$OUT/gemlive-archive-keyring.gpg.tmp"
chmod 644 "$OUT/gemlive-archive-keyring.gpg.tmp"
mv "$OUT/gemlive-archive-keyring.gpg.tmp" "$OUT/gemlive-archive-keyring.gpg"
rm -rf "$OUT/dists/.old-$SUITE"
if [ -d "$OUT/dists/$SUITE" ]; then mv "$OUT/dists/$SUITE" "$OUT/dists/.old-$SUITE"; fi
mv "$new" "$OUT/dists/$SUITE"
rm -rf "$OUT/dists/.old-$SUITE"
t_sign=$(secs "$t0")

# ---- report
log "repository $OUT (suite $SUITE, component $COMPONENT, archs $ARCHS)"
log "  signed by $FPR ($(gpg "${GPG_OPTS[@]}" --list-keys --with-colons "$FPR" | awk -F: '/^uid:/{print $10; exit}'))"
log "  public key: $OUT/gemlive-archive-keyring.gpg"
log "  added ${#added[@]} .deb(s); the pool now holds:"
find pool -name '*.deb' | sort | sed 's/^/repo:     /'
for arch in $ARCHS; do
  log "  binary-$arch: $(grep -c '^Package: ' "dists/$SUITE/$COMPONENT/binary-$arch/Packages" || true) package version(s): $(awk '/^Package: /{p=$2} /^Version: /{printf "%s=%s ", p, $2}' "dists/$SUITE/$COMPONENT/binary-$arch/Packages")"
done
log "phases: key $t_key s, pool + indexes $t_index s, Release + signatures $t_sign s"
cat <<EOF
repo: a client's /etc/apt/sources.list.d/gemlive.sources (with the key in /etc/apt/keyrings):
Types: deb
URIs: <where OUTDIR is published, or file:$OUT>
Suites: $SUITE
Components: $COMPONENT
Signed-By: /etc/apt/keyrings/gemlive-archive-keyring.gpg
EOF
log "ok"
