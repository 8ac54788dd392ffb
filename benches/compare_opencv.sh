#!/usr/bin/env bash
# Times gemlive's JPEG pipeline against OpenCV on the same frames, in one run.
#
#   1. makes a venv under target/opencv-venv (once) with opencv-python-headless + numpy from PyPI;
#   2. runs `cargo bench --bench jpeg_pipeline`, which writes the frames to target/bench-frames/
#      and prints gemlive's median ms/frame (letterbox 768, q80, 1 thread);
#   3. runs benches/opencv_pipeline.py on those files (imdecode -> INTER_AREA letterbox ->
#      imencode q80, 1 thread);
#   4. prints a table: size, wall ms (median) and CPU ms (this thread's CPU time per frame) of
#      both, and the CPU ratio (goal: <= 0.80). The verdict is on CPU time, which does not flip
#      when another program loads the machine during one of the two runs.
#
# Usage: benches/compare_opencv.sh        (from anywhere; RUNS=N to change OpenCV's run count)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/opencv-venv"
runs="${RUNS:-101}"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import cv2, numpy' 2>/dev/null; then
    echo "== creating $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check opencv-python-headless numpy
fi

echo "== cargo bench --bench jpeg_pipeline" >&2
rust_out="$(cargo bench --quiet --bench jpeg_pipeline 2>/dev/null)"
echo "$rust_out"

mapfile -t files < <(sed -n 's/^gemlive file=\([^ ]*\) .*/\1/p' <<<"$rust_out")
if [[ ${#files[@]} -eq 0 ]]; then
    echo "no 'gemlive file=' lines in the bench output" >&2
    exit 1
fi

echo "== benches/opencv_pipeline.py" >&2
cv_out="$("$venv/bin/python" benches/opencv_pipeline.py --runs "$runs" "${files[@]}")"
echo "$cv_out"

# key=value lines from both tools, joined on the file path
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }
echo
printf '%-10s %12s %11s %12s %11s %9s %13s %12s\n' size "gemlive ms" "OpenCV ms" "gemlive CPU" "OpenCV CPU" "CPU ratio" "gemlive bytes" "OpenCV bytes"
for f in "${files[@]}"; do
    g="$(grep -F "gemlive file=$f " <<<"$rust_out")"
    c="$(grep -F "opencv file=$f " <<<"$cv_out")"
    gm="$(field median_ms "$g")"
    cm="$(field median_ms "$c")"
    gc="$(field cpu_ms "$g")"
    cc="$(field cpu_ms "$c")"
    ratio="$(awk -v a="$gc" -v b="$cc" 'BEGIN { printf "%.2f", a / b }')"
    verdict="$(awk -v r="$ratio" 'BEGIN { print (r <= 0.80) ? "ok" : "over 0.80" }')"
    printf '%-10s %12s %11s %12s %11s %9s %13s %12s  %s\n' "$(field size "$g")" "$gm" "$cm" "$gc" "$cc" \
        "${ratio}x" "$(field out_bytes "$g")" "$(field out_bytes "$c")" "$verdict"
done
