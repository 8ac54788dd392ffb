#!/usr/bin/env bash
# Runs every fuzz target for DURATION seconds (default 60) from the committed seeds
# (fuzz/seeds/<target>) plus whatever fuzz/corpus/<target> has gathered so far.
# Exits non-zero when a target crashes (libFuzzer leaves the input in fuzz/artifacts/<target>/).
# Needs the nightly toolchain and cargo-fuzz; without them it prints SKIP and exits 0, unless
# REQUIRE_FUZZ=1. TARGETS="a b" runs a subset.
set -euo pipefail
cd "$(dirname "$0")"
DURATION="${1:-60}"
TARGETS="${TARGETS:-server_message jpeg_pipeline config key_file mcp_message wake_model}"

missing=""
cargo +nightly --version >/dev/null 2>&1 || missing="the nightly toolchain"
[ -n "$missing" ] || cargo +nightly fuzz --version >/dev/null 2>&1 ||
  missing="cargo-fuzz (cargo install cargo-fuzz --locked)"
if [ -n "$missing" ]; then
  if [ "${REQUIRE_FUZZ:-0}" = 1 ]; then
    echo "fuzz: $missing is not installed and REQUIRE_FUZZ=1" >&2
    exit 1
  fi
  echo "SKIP fuzz: $missing is not installed"
  exit 0
fi

# One build for all targets (debug assertions and overflow checks on, AddressSanitizer).
cargo +nightly fuzz build

failed=""
for t in $TARGETS; do
  mkdir -p "corpus/$t"
  args=(-max_total_time="$DURATION" -print_final_stats=1
    # A unit this slow is a finding (a frame the Pi could not keep up with), not noise.
    -timeout=25)
  [ -f "dicts/$t.dict" ] && args+=(-dict="dicts/$t.dict")
  echo "fuzz: $t for ${DURATION} s"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- "${args[@]}"; then
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: crashes in:$failed (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: no crash in $TARGETS"
