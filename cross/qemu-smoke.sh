#!/usr/bin/env bash
# Proof that the cross-built arm64 binary runs: executes it on this x86_64 host under qemu-user
# (Debian's qemu-user, `qemu-aarch64 -L SYSROOT`), with the loader, libc, libgcc_s, libasound
# and alsa-lib's configuration from the bookworm arm64 sysroot that cross/build.sh made.
#
# usage: cross/qemu-smoke.sh [aarch64|armv7]      (default aarch64; run cross/build.sh first)
#
# Checks, each of which fails the script:
#   1. `gemlive --version` prints "gemlive <Cargo.toml version>".
#   2. `gemlive --config config/gemlive.toml check-config` (the shipped config, GEMINI_API_KEY
#      set) exits 0 and reports the file ok and the key set.
#   3. `gemlive list-devices` loads the target's alsa-lib configuration and opens the `null`
#      PCM for 24 kHz S16_LE playback.
#   4. `gemlive demo`: the daemon (a child process, so also under qemu) runs a whole voice
#      session against the built-in stand-in with file-backed ALSA PCMs; the demo must say
#      "demo ok" and write a non-empty demo-speaker.wav. The child is started by execve(), so
#      the kernel needs a binfmt_misc entry for the target: the script registers one in a
#      private user+mount namespace (`unshare --user --map-root-user --mount`, Linux >= 6.7),
#      so the host's binfmt_misc is never changed. If that is impossible (older kernel,
#      unprivileged container) and no binfmt entry exists already, the demo is SKIPPED, or
#      fails the script with REQUIRE_DEMO=1.
#   5. `gemlive bench frame 1280x720 1`: the camera pipeline's output JPEG has the same FNV
#      digest as on this host (HOST_BIN, default target/debug/gemlive then target/release/
#      gemlive; skipped if neither is built): the encoder's float arithmetic gives the same
#      bytes on ARM as in the x86 tests.
#
# env: CROSS_DIR (as cross/build.sh), REQUIRE_DEMO=1, BIN (binary to test; default
#      target/<triple>/release/gemlive), HOST_BIN
# shellcheck disable=SC2015  # `A && B || fail` is meant: fail unless both hold
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=cross/build.sh
. "$HERE/build.sh" --lib
arch_vars "${1:-aarch64}"
case "$DEB" in
  arm64) QEMU=qemu-aarch64
    MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
  armhf) QEMU=qemu-arm
    MAGIC='\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00'
    MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
esac
built_binary "${1:-aarch64}"
QEMU_BIN=$(command -v "$QEMU") || die "$QEMU not found (apt-get install qemu-user)"
# qemu-user's -L, as an environment variable so that child processes inherit it
export QEMU_LD_PREFIX=$SYSROOT
unset GEMLIVE_CONFIG CREDENTIALS_DIRECTORY NOTIFY_SOCKET JOURNAL_STREAM ALSA_CONFIG_PATH
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
fail() { echo "qemu-smoke: FAILED: $1" >&2; shift; [ $# -gt 0 ] && cat "$@" >&2; exit 1; }
run() { "$QEMU_BIN" "$BIN" "$@"; }
echo "qemu-smoke: $(file -b "$BIN" | cut -d, -f1-2) under $($QEMU_BIN --version | head -1), sysroot $SYSROOT"

# 1. --version
t=$(date +%s%N)
want="gemlive $(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
got=$(run --version) || fail "--version exited $?"
[ "$got" = "$want" ] || fail "--version printed '$got', expected '$want'"
echo "qemu-smoke: --version: '$got' ($(ms "$t") ms)"

# 2. check-config on the shipped config
t=$(date +%s%N)
rc=0
(cd "$ROOT" && GEMINI_API_KEY=dummy-key-for-check-config "$QEMU_BIN" "$BIN" --config config/gemlive.toml check-config) \
  > "$WORK/check.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "check-config exited $rc" "$WORK/check.out"
grep -q '^config: config/gemlive.toml (ok)$' "$WORK/check.out" || fail "check-config: no 'config: … (ok)'" "$WORK/check.out"
grep -q '^api key: set (from GEMINI_API_KEY)$' "$WORK/check.out" || fail "check-config: key not seen" "$WORK/check.out"
! grep -q dummy-key-for-check-config "$WORK/check.out" || fail "check-config printed the key" "$WORK/check.out"
echo "qemu-smoke: check-config config/gemlive.toml: ok, $(wc -l < "$WORK/check.out") lines ($(ms "$t") ms)"

# 3. list-devices: the target's alsa-lib reads its own configuration (sysroot /usr/share/alsa)
t=$(date +%s%N)
(cd "$ROOT" && "$QEMU_BIN" "$BIN" --config config/gemlive.toml list-devices) > "$WORK/list.out" 2> "$WORK/list.err" ||
  fail "list-devices exited $?" "$WORK/list.out" "$WORK/list.err"
grep -A2 '^null ' "$WORK/list.out" | grep -q 'playback: .*ok: 24 kHz S16_LE mono' ||
  fail "list-devices: the null PCM does not play 24 kHz S16_LE" "$WORK/list.out" "$WORK/list.err"
echo "qemu-smoke: list-devices: alsa-lib config loaded, null PCM ok ($(ms "$t") ms)"

# 5. (before the demo, which needs binfmt) the JPEG pipeline's bytes match the host's
t=$(date +%s%N)
fnv() { sed -n 's/.*fnv \([0-9a-f]*\).*/\1/p'; }
HOST_BIN=${HOST_BIN:-}
for b in "$ROOT/target/debug/gemlive" "$ROOT/target/release/gemlive"; do
  [ -n "$HOST_BIN" ] || [ ! -x "$b" ] || HOST_BIN=$b
done
if [ -n "$HOST_BIN" ] && "$HOST_BIN" --help 2>/dev/null | grep -q 'bench WORKLOAD'; then
  arm=$(run bench frame 1280x720 1 | fnv) || fail "bench frame exited $?"
  host=$("$HOST_BIN" bench frame 1280x720 1 | fnv)
  [ -n "$arm" ] && [ "$arm" = "$host" ] || fail "the 720p frame encodes to fnv '$arm' here but '$host' on the host"
  echo "qemu-smoke: bench frame 1280x720: the same JPEG as on the host (fnv $arm) ($(ms "$t") ms)"
else
  echo "qemu-smoke: bench frame: SKIPPED (no host gemlive with bench; build one or set HOST_BIN)"
fi

# 4. demo
demo_inner() { # runs inside the private namespace (or directly when binfmt is already there)
  if [ -n "${REGISTER:-}" ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    printf '%s' ":gemlive-$DEB:M::$MAGIC:$MASK:$QEMU_BIN:F" > /proc/sys/fs/binfmt_misc/register
  fi
  cd "$WORK" && timeout 180 "$BIN" demo
}
export -f demo_inner
export WORK BIN DEB MAGIC MASK QEMU_BIN
binfmt_ready() { grep -qs "^interpreter .*qemu-${QEMU#qemu-}" /proc/sys/fs/binfmt_misc/* 2>/dev/null; }
t=$(date +%s%N)
mode=""
if unshare --user --map-root-user --mount true 2>/dev/null &&
   unshare --user --map-root-user --mount sh -c 'mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc' 2>/dev/null; then
  mode="binfmt_misc in a private user namespace"
  cmd=(unshare --user --map-root-user --mount env REGISTER=1 bash -c demo_inner)
elif binfmt_ready; then
  mode="the host's binfmt_misc entry"
  cmd=(bash -c demo_inner)
fi
if [ -z "$mode" ]; then
  msg="demo: SKIPPED: cannot register a binfmt_misc entry for $QEMU (needs Linux >= 6.7 user-namespace binfmt_misc, or qemu-user-binfmt)"
  [ -z "${REQUIRE_DEMO:-}" ] || fail "$msg (REQUIRE_DEMO set)"
  echo "qemu-smoke: $msg"
else
  rc=0
  "${cmd[@]}" > "$WORK/demo.out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || fail "demo exited $rc" "$WORK/demo.out"
  grep -q '^demo ok$' "$WORK/demo.out" || fail "demo did not say 'demo ok'" "$WORK/demo.out"
  grep -q 'identical to the recording: yes' "$WORK/demo.out" || fail "demo: mic audio not intact" "$WORK/demo.out"
  wav=$WORK/demo-speaker.wav
  [ -f "$wav" ] && [ "$(head -c4 "$wav")" = RIFF ] && [ "$(stat -c %s "$wav")" -gt 48044 ] ||
    fail "demo-speaker.wav missing, not RIFF, or under a second of audio" "$WORK/demo.out"
  echo "qemu-smoke: demo ($mode): 'demo ok', demo-speaker.wav $(stat -c %s "$wav") bytes ($(ms "$t") ms)"
  grep -E '^  (mic audio|camera frames|replies sent|speaker file|session closed)' "$WORK/demo.out" | sed 's/^/qemu-smoke:   /'
fi
echo "qemu-smoke: ok in $(ms "$T0") ms"
