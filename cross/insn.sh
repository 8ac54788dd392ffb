#!/usr/bin/env bash
# Counts the instructions the cross-built gemlive executes on its hot paths, as ARM code: the
# release binary runs its `gemlive bench` workloads under qemu-user with a TCG plugin that
# counts every guest instruction (cross/insn/count.c). Instruction counts do not depend on
# this machine's speed or load, so CI can guard them.
#
# usage: cross/insn.sh [aarch64|armv7]        (default aarch64; run cross/build.sh first)
#
#   1. qemu-user with plugin support: Debian's qemu 10 (backports, trixie) is built static and
#      cannot load plugins, so bookworm's dynamically linked qemu-user 7.2 is downloaded with
#      `apt-get download qemu-user/bookworm` and unpacked (dpkg-deb -x) into
#      $CROSS_DIR/qemu-plugins; nothing is installed.
#   2. qemu-plugin.h of that exact upstream version, from the Debian source package
#      (qemu_<upstream>.orig.tar.xz on deb.debian.org, checked against the .dsc's SHA-256).
#   3. gcc builds cross/insn/count.c against it into libgemlive-count.so.
#   4. The workloads, each counted between the markers `gemlive bench` sets (set-up and input
#      synthesis excluded):
#        frame-720p   gemlive bench frame 1280x720 3   instructions per frame
#        frame-1080p  gemlive bench frame 1920x1080 3  instructions per frame
#        frame-800x600 gemlive bench frame 800x600 3   (the mode `capture_size = "auto"` picks
#                                                       for 768 when the camera offers it)
#        audio-aec    gemlive bench audio 10           instructions per second of audio
#      With INSN_STREAM=SECONDS (e.g. 60) also the whole daemon, counted from exec to exit:
#        stream       gemlive bench stream S           per second of streaming (720p camera)
#        stream-audio gemlive bench stream-audio S     per second of streaming (no camera)
#   5. A table: instructions, the committed figure (cross/insn-baseline-<arm64|armhf>.txt), the change, and
#      the share of one Cortex-A53 core at 1 GHz at one frame per second, assuming INSN_IPC
#      instructions per cycle (default 0.7) and INSN_KERNEL kernel time on top (default 0.20,
#      i.e. +20 %: ALSA, V4L2, sockets). It FAILS when a figure is more than 15 % above the
#      committed one (INSN_TOLERANCE, default 0.15). A figure more than 15 % below says so:
#      commit the new figures with INSN_UPDATE=1, which rewrites the baseline file.
#
#   6. INSN_PROFILE="WORKLOAD ARGS" (e.g. "frame 1280x720 3") instead: that workload's marked
#      instructions per function (the INSN_TOP largest, default 30), from an unstripped build of
#      the same code (cargo --profile insn: release, not stripped; target/<triple>/insn) and the
#      plugin's per-block counts (count.c tbs=, cross/insn/profile.py). No guard runs.
#
# env: CROSS_DIR, BIN (binary; default target/<triple>/release/gemlive), INSN_STREAM,
#      INSN_IPC, INSN_KERNEL, INSN_TOLERANCE, INSN_UPDATE, INSN_PROFILE, INSN_TOP
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=cross/build.sh
. "$HERE/build.sh" --lib
arch_vars "${1:-aarch64}"
case "$DEB" in
  arm64) QEMU_NAME=qemu-aarch64 PRCTL=167 ;;
  armhf) QEMU_NAME=qemu-arm PRCTL=172 ;;
  *) die "insn: $DEB is not an ARM target" ;;
esac
built_binary "${1:-aarch64}"
BASELINE=$HERE/insn-baseline-$DEB.txt
IPC=${INSN_IPC:-0.7}
KERNEL=${INSN_KERNEL:-0.20}
TOL=${INSN_TOLERANCE:-0.15}
say() { echo "insn: $*"; }

# 1-3. plugin-capable qemu-user, the header, the plugin
QDIR=$CROSS_DIR/qemu-plugins
QEMU=$QDIR/root/usr/bin/$QEMU_NAME
PLUGIN=$QDIR/libgemlive-count.so
mkdir -p "$QDIR"
if [ ! -x "$QEMU" ]; then
  (cd "$QDIR" && rm -f qemu-user_*.deb && apt-get download -q "qemu-user/bookworm" >/dev/null 2>&1) ||
    die "insn: apt-get download qemu-user/bookworm failed (needs bookworm in the host's apt sources)"
  rm -rf "$QDIR/root"
  dpkg-deb -x "$QDIR"/qemu-user_*.deb "$QDIR/root"
fi
"$QEMU" -h 2>/dev/null | grep -q -- '^-plugin' || die "insn: $QEMU has no -plugin option"
QVER=$(dpkg-deb -f "$QDIR"/qemu-user_*.deb Version)   # e.g. 1:7.2+dfsg-7+deb12u18+b3
UPSTREAM=${QVER#*:}; UPSTREAM=${UPSTREAM%%-*}          # 7.2+dfsg
DEBREV=${QVER#*:}; DEBREV=${DEBREV%+b[0-9]*}          # 7.2+dfsg-7+deb12u18 (no binNMU)
HEADER=$QDIR/include-$UPSTREAM/qemu-plugin.h
if [ ! -f "$HEADER" ]; then
  POOL=http://deb.debian.org/debian/pool/main/q/qemu
  ORIG=qemu_$UPSTREAM.orig.tar.xz
  curl -fsS -o "$QDIR/qemu.dsc" "$POOL/qemu_$DEBREV.dsc" || die "insn: cannot fetch $POOL/qemu_$DEBREV.dsc"
  want=$(awk -v f="$ORIG" '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && $3 == f {print $1}' "$QDIR/qemu.dsc")
  [ -n "$want" ] || die "insn: $ORIG not listed in qemu_$DEBREV.dsc"
  [ -f "$QDIR/$ORIG" ] && [ "$(sha256sum < "$QDIR/$ORIG" | cut -d' ' -f1)" = "$want" ] ||
    curl -fsS -o "$QDIR/$ORIG" "$POOL/$ORIG" || die "insn: cannot fetch $POOL/$ORIG"
  [ "$(sha256sum < "$QDIR/$ORIG" | cut -d' ' -f1)" = "$want" ] || die "insn: $ORIG does not match its .dsc"
  mkdir -p "$QDIR/include-$UPSTREAM"
  tar -xJf "$QDIR/$ORIG" -O --wildcards '*/include/qemu/qemu-plugin.h' > "$HEADER.tmp"
  [ -s "$HEADER.tmp" ] || die "insn: no include/qemu/qemu-plugin.h in $ORIG"
  mv "$HEADER.tmp" "$HEADER"
fi
if [ ! -f "$PLUGIN" ] || [ "$HERE/insn/count.c" -nt "$PLUGIN" ] || [ "$HEADER" -nt "$PLUGIN" ]; then
  gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I "$(dirname "$HEADER")" -o "$PLUGIN" "$HERE/insn/count.c"
fi
say "$(file -b "$BIN" | cut -d, -f1-2) under $("$QEMU" --version | head -1) with cross/insn/count.c"

export QEMU_LD_PREFIX=$SYSROOT
unset GEMLIVE_CONFIG CREDENTIALS_DIRECTORY NOTIFY_SOCKET JOURNAL_STREAM ALSA_CONFIG_PATH
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# INSN_PROFILE: where one workload's instructions go, per function, instead of the guard.
if [ -n "${INSN_PROFILE:-}" ]; then
  say "profile of gemlive bench $INSN_PROFILE: building the release code unstripped (cargo --profile insn)"
  PBIN=$ROOT/target/$TRIPLE/insn/gemlive
  (cross_env && cd "$ROOT" && cargo build --profile insn --locked --target "$TRIPLE")
  # shellcheck disable=SC2086 # the workload's words
  "$QEMU" -d page -D "$WORK/page.log" -plugin "$PLUGIN,out=$WORK/p.count,sys=$PRCTL,tbs=$WORK/p.tbs" \
    "$PBIN" bench $INSN_PROFILE > "$WORK/p.log" 2>&1 || { cat "$WORK/p.log" >&2; die "insn: gemlive bench $INSN_PROFILE failed"; }
  say "$(sed -n 1p "$WORK/p.log" | cut -c1-160)"
  load=$(awk '$1 == "start_code" {print $2; exit}' "$WORK/page.log")
  [ -n "$load" ] || die "insn: no start_code in qemu's -d page log"
  "$GNU-nm" -C -n --defined-only "$PBIN" > "$WORK/p.nm"
  python3 "$HERE/insn/profile.py" "$WORK/p.tbs" "$WORK/p.nm" "$load" "${INSN_TOP:-30}"
  exit 0
fi

# count NAME DIVISOR FIELD ARGS...: runs `gemlive ARGS` under the counter; prints FIELD/DIVISOR
declare -A FIG
count() {
  local name=$1 div=$2 field=$3; shift 3
  local out=$WORK/$name.count t
  t=$(date +%s%N)
  "$QEMU" -plugin "$PLUGIN,out=$out,sys=$PRCTL" "$BIN" "$@" > "$WORK/$name.log" 2>&1 ||
    { cat "$WORK/$name.log" >&2; die "insn: gemlive $* exited $?"; }
  [ -s "$out" ] || die "insn: the counter wrote nothing for $name"
  local n
  n=$(awk -v f="$field" '$1 == f {print $2}' "$out")
  [ "$field" = total ] || [ "$(awk '$1 == "regions" {print $2}' "$out")" = 1 ] ||
    die "insn: $name: no marked region (does the binary set the markers?)"
  FIG[$name]=$(( n / div ))
  say "$name: $(sed -n 1p "$WORK/$name.log" | cut -c1-160) [$(( ($(date +%s%N) - t) / 1000000 )) ms under qemu]"
}
count frame-720p 3 marked bench frame 1280x720 3
count frame-1080p 3 marked bench frame 1920x1080 3
count frame-800x600 3 marked bench frame 800x600 3
count audio-aec 10 marked bench audio 10
ORDER=(frame-720p frame-1080p frame-800x600 audio-aec)
if [ -n "${INSN_STREAM:-}" ]; then
  # The daemon the driver starts is the counted process, from exec to exit. The driver (the
  # stand-in, the file devices) runs natively when this host has a gemlive with `bench` (HOST_BIN,
  # default target/release/gemlive), else under plain qemu, where it can fall behind reading
  # (its own mic and frame counts then come out low; the daemon's work does not change).
  HOST_BIN=${HOST_BIN:-$ROOT/target/release/gemlive}
  driver=("$QEMU" "$BIN")
  if [ -x "$HOST_BIN" ] && "$HOST_BIN" --help 2>/dev/null | grep -q 'bench WORKLOAD'; then
    driver=("$HOST_BIN")
  fi
  for w in stream stream-audio; do
    t=$(date +%s%N)
    GEMLIVE_BENCH_RUN="$QEMU -plugin $PLUGIN,out=$WORK/$w.count,sys=$PRCTL $BIN" \
      "${driver[@]}" bench "$w" "$INSN_STREAM" > "$WORK/$w.log" 2>&1 ||
      { cat "$WORK/$w.log" >&2; die "insn: gemlive bench $w exited $?"; }
    n=$(awk '$1 == "total" {print $2}' "$WORK/$w.count")
    FIG[$w]=$(( n / INSN_STREAM ))
    say "$w: $(tail -1 "$WORK/$w.log" | cut -c1-160) [$(( ($(date +%s%N) - t) / 1000000 )) ms]"
    ORDER+=("$w")
  done
fi

# 5. the table and the guard
unit() { case $1 in frame-*) echo "per frame" ;; audio-*) echo "per s of audio" ;; *) echo "per s streamed" ;; esac; }
pct() { awk -v n="$1" -v ipc="$IPC" -v k="$KERNEL" 'BEGIN { printf "%.1f", n / (ipc * 1e9) * (1 + k) * 100 }'; }
printf '%-14s %15s %16s %15s %8s %12s\n' workload instructions unit baseline change "A53 1GHz %"
bad=0
for w in "${ORDER[@]}"; do
  n=${FIG[$w]}
  base=$(awk -v w="$w" '$1 == w {print $2}' "$BASELINE" 2>/dev/null || true)
  change="-"; verdict=""
  if [ -n "$base" ]; then
    change=$(awk -v n="$n" -v b="$base" 'BEGIN { printf "%+.1f%%", (n - b) / b * 100 }')
    verdict=$(awk -v n="$n" -v b="$base" -v t="$TOL" 'BEGIN {
      if (n > b * (1 + t)) print "OVER"; else if (n < b * (1 - t)) print "below: update the baseline"; else print "ok" }')
    [ "$verdict" != OVER ] || bad=1
  fi
  printf '%-14s %15s %16s %15s %8s %12s  %s\n' "$w" "$n" "$(unit "$w")" "${base:--}" "$change" "$(pct "$n")" "$verdict"
done
total=$(( FIG[frame-720p] + FIG[audio-aec] ))
say "720p at 1 frame/s + audio with AEC: $total instructions per second = $(pct "$total") % of one Cortex-A53 core at 1 GHz (IPC $IPC, kernel +$(awk -v k="$KERNEL" 'BEGIN{print k*100}') %)"
if [ -n "${INSN_UPDATE:-}" ]; then
  {
    echo "# cross/insn.sh: instructions of the aarch64 release binary per unit of work, counted under"
    echo "# qemu-user (cross/insn/count.c). CI fails when one grows more than 15 %. Regenerate with"
    echo "# INSN_UPDATE=1 [INSN_STREAM=60] bash cross/insn.sh ${1:-aarch64}"
    for w in "${ORDER[@]}"; do echo "$w ${FIG[$w]} $(unit "$w")"; done
    # keep committed figures of workloads this run did not measure
    for w in stream stream-audio; do
      [ -n "${FIG[$w]:-}" ] || awk -v w="$w" '$1 == w' "$BASELINE" 2>/dev/null || true
    done
  } > "$BASELINE.tmp"
  mv "$BASELINE.tmp" "$BASELINE"
  say "wrote $BASELINE"
fi
[ "$bad" = 0 ] || die "insn: a figure grew more than $(awk -v t="$TOL" 'BEGIN{print t*100}') % over $BASELINE"
say ok
