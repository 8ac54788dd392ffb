#!/usr/bin/env python3
"""OpenCV reference for benches/jpeg_pipeline.rs: the same job on the same files.

Per file: cv2.imdecode -> letterbox into 768x768 (scale to fit without upscaling,
cv2.resize with INTER_AREA -- antialiased, the like-for-like mode for fast_image_resize's
Convolution(Bilinear) -- centred on a black canvas) -> cv2.imencode('.jpg', quality 80; OpenCV's
default chroma subsampling is 4:2:0, as in gemlive). One thread (cv2.setNumThreads(1)).

Prints one line per file, parsed by benches/compare_opencv.sh:
    opencv file=PATH size=WxH median_ms=X.XXX cpu_ms=X.XXX out_bytes=N
(cpu_ms: this thread's CPU time per frame, averaged over the runs: unlike the wall time it does
not grow when other programs load the machine.)

Usage: opencv_pipeline.py [--runs N] [--warm-up N] [--size S] [--quality Q] FILE...
"""

import argparse
import statistics
import sys
import time

import cv2
import numpy as np


def letterbox(img, size):
    h, w = img.shape[:2]
    long_side = max(w, h)
    if long_side > size:
        # same rounding as gemlive's fit_within: round to nearest, at least 1
        cw = max(1, min(size, (w * size + long_side // 2) // long_side))
        ch = max(1, min(size, (h * size + long_side // 2) // long_side))
        content = cv2.resize(img, (cw, ch), interpolation=cv2.INTER_AREA)
    else:
        cw, ch, content = w, h, img
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    x, y = (size - cw) // 2, (size - ch) // 2
    canvas[y:y + ch, x:x + cw] = content
    return canvas


def pipeline(data, size, quality):
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("imdecode failed")
    ok, out = cv2.imencode(".jpg", letterbox(img, size), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("imencode failed")
    return img.shape, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=101)
    ap.add_argument("--warm-up", type=int, default=5)
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--quality", type=int, default=80)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    print(f"# opencv {cv2.__version__}, numpy {np.__version__}, threads {cv2.getNumThreads()}",
          flush=True)
    for path in args.files:
        with open(path, "rb") as f:
            data = np.frombuffer(f.read(), dtype=np.uint8)
        for _ in range(args.warm_up):
            pipeline(data, args.size, args.quality)
        times = []
        cpu0 = time.thread_time()
        for _ in range(args.runs):
            t = time.perf_counter()
            shape, out = pipeline(data, args.size, args.quality)
            times.append((time.perf_counter() - t) * 1e3)
        cpu_ms = (time.thread_time() - cpu0) * 1e3 / args.runs
        h, w = shape[:2]
        print(f"opencv file={path} size={w}x{h} median_ms={statistics.median(times):.3f} "
              f"cpu_ms={cpu_ms:.3f} out_bytes={len(out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
