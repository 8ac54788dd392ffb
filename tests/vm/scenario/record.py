#!/usr/bin/env python3
"""Records an ALSA capture device to a raw file, with the CLOCK_MONOTONIC time of every read,
so that a sample's wall time can be lined up with another process's log (latency).

usage: record.py DEVICE RATE OUT.raw OUT.times      (stops on SIGTERM)
OUT.times: one line per read: "<frames recorded so far> <monotonic seconds after the read>"
"""
import ctypes, signal, sys, time

dev, rate, out_raw, out_times = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
a = ctypes.CDLL("libasound.so.2")
pcm = ctypes.c_void_p()
assert a.snd_pcm_open(ctypes.byref(pcm), dev.encode(), 1, 0) == 0, "open"  # 1 = capture
# S16_LE (2), RW interleaved (3), 1 channel, soft resample on, 100 ms latency
assert a.snd_pcm_set_params(pcm, 2, 3, 1, rate, 1, 100000) == 0, "set_params"
# snd_pcm_set_params leaves a capture start threshold of a whole buffer: start explicitly.
a.snd_pcm_start(pcm)
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
frames = 480  # 20 ms at 24 kHz
buf = ctypes.create_string_buffer(frames * 2)
total = 0
with open(out_raw, "wb") as raw, open(out_times, "w") as times:
    while not stop:
        n = a.snd_pcm_readi(pcm, buf, frames)
        if n < 0:
            a.snd_pcm_recover(pcm, n, 1)
            a.snd_pcm_start(pcm)
            continue
        t = time.monotonic()
        raw.write(buf.raw[: n * 2])
        total += n
        times.write(f"{total} {t:.6f}\n")
