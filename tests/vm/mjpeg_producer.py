#!/usr/bin/env python3
"""Feed JPEG frames as an MJPEG stream into a v4l2loopback OUTPUT device (run INSIDE the VM).

usage: mjpeg_producer.py DEVICE INPUT... [--fps 15] [--seconds 0] [--count 0] [--pidfile F]
  INPUT   a .jpg file (one frame) or a concatenated MJPEG file (split into frames at the JPEG
          markers); frames are sent in order and cycled
  --fps   pacing (absolute schedule, no drift); --seconds / --count: stop after that long or that
          many frames (0 = until SIGTERM/SIGINT)
  --width/--height  advertised size (default: read from the first frame's SOF marker)
Stops cleanly on SIGTERM/SIGINT (exit 0, pidfile removed) and prints "producer: wrote N frames".

Trap (v4l2loopback 0.12.7): a producer that only write()s is never marked as the device's writer;
after it exits, the device offers neither capture nor output and a restarted producer's S_FMT
fails with EINVAL. So this producer does VIDIOC_QUERYCAP, VIDIOC_S_FMT(OUTPUT, MJPG) and
VIDIOC_STREAMON(OUTPUT) before writing: then it can be stopped (a camera stall: consumers simply
block in DQBUF) and restarted. Note also that the first frame a consumer gets after REQBUFS
arrives padded to sizeimage (stale bytes after the JPEG EOI): cut frames at EOI.
"""
import argparse, fcntl, os, signal, struct, sys, time

# ioctl numbers for x86_64 (_IOR/_IOW/_IOWR('V', nr, size))
VIDIOC_QUERYCAP = 0x80685600   # _IOR('V', 0, struct v4l2_capability[104])
VIDIOC_S_FMT = 0xC0D05605      # _IOWR('V', 5, struct v4l2_format[208])
VIDIOC_STREAMON = 0x40045612   # _IOW('V', 18, int)
VIDIOC_STREAMOFF = 0x40045613  # _IOW('V', 19, int)
VIDIOC_S_PARM = 0xC0CC5616     # _IOWR('V', 22, struct v4l2_streamparm[204])
BUF_TYPE_VIDEO_OUTPUT, FIELD_NONE = 2, 1
CAP_VIDEO_OUTPUT = 0x2
MJPG = struct.unpack('<I', b'MJPG')[0]


def split_jpegs(data):
    """Split a byte string holding one or more JPEGs into frames (SOI..EOI), walking the
    marker segments so that an EXIF thumbnail or entropy-coded data cannot cut a frame."""
    frames, i, n = [], 0, len(data)
    while True:
        s = data.find(b'\xff\xd8', i)
        if s < 0:
            return frames
        j = s + 2
        while j + 1 < n:
            if data[j] != 0xFF:
                raise ValueError(f"bad JPEG marker at offset {j}")
            m = data[j + 1]
            if m == 0xFF:                       # fill byte
                j += 1
                continue
            if m == 0xD9:                       # EOI
                j += 2
                break
            if m == 0x01 or 0xD0 <= m <= 0xD7:  # markers without a length
                j += 2
                continue
            seg_end = j + 2 + struct.unpack_from('>H', data, j + 2)[0]
            if m == 0xDA:                       # SOS: skip entropy-coded data
                k = seg_end
                while True:
                    k = data.find(b'\xff', k)
                    if k < 0 or k + 1 >= n:
                        k = n
                        break
                    if data[k + 1] == 0 or 0xD0 <= data[k + 1] <= 0xD7:
                        k += 2
                        continue
                    break
                j = k
            else:
                j = seg_end
        frames.append(data[s:j])
        i = j


def jpeg_size(frame):
    """(width, height) from the first SOFn marker."""
    j = 2
    while j + 9 < len(frame):
        m = frame[j + 1]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack_from('>HH', frame, j + 5)
            return w, h
        j += 2 + struct.unpack_from('>H', frame, j + 2)[0]
    raise ValueError("no SOF marker in first frame")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('device')
    ap.add_argument('inputs', nargs='+')
    ap.add_argument('--fps', type=float, default=15.0)
    ap.add_argument('--seconds', type=float, default=0.0)
    ap.add_argument('--count', type=int, default=0)
    ap.add_argument('--width', type=int)
    ap.add_argument('--height', type=int)
    ap.add_argument('--pidfile')
    a = ap.parse_args()

    frames = []
    for path in a.inputs:
        with open(path, 'rb') as f:
            got = split_jpegs(f.read())
        if not got:
            sys.exit(f"producer: no JPEG frame in {path}")
        frames += got
    w, h = jpeg_size(frames[0])
    w, h = a.width or w, a.height or h
    maxsz = max(len(f) for f in frames)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    fd = os.open(a.device, os.O_RDWR)
    cap = bytearray(104)
    fcntl.ioctl(fd, VIDIOC_QUERYCAP, cap)
    driver = cap[:16].split(b'\0')[0].decode()
    caps, device_caps = struct.unpack_from('<II', cap, 84)
    if not (device_caps or caps) & CAP_VIDEO_OUTPUT:
        print(f"producer: warning: {a.device} ({driver}) does not advertise VIDEO_OUTPUT now "
              f"(device_caps=0x{device_caps:x}; exclusive_caps=1 and a writer already present?)",
              file=sys.stderr, flush=True)
    # struct v4l2_format: u32 type; 4 bytes pad; union { struct v4l2_pix_format pix; raw[200] }
    pix = struct.pack('<12I', w, h, MJPG, FIELD_NONE, 0, maxsz, 0, 0, 0, 0, 0, 0)
    fmt = bytearray(struct.pack('<I4x', BUF_TYPE_VIDEO_OUTPUT) + pix.ljust(200, b'\0'))
    fcntl.ioctl(fd, VIDIOC_S_FMT, fmt)
    sizeimage = struct.unpack_from('<I', fmt, 8 + 20)[0]
    # frame rate the consumers see (v4l2_outputparm.timeperframe); best effort
    try:
        parm = bytearray(struct.pack('<I', BUF_TYPE_VIDEO_OUTPUT).ljust(204, b'\0'))
        struct.pack_into('<II', parm, 4 + 8, 1000, int(round(a.fps * 1000)))
        fcntl.ioctl(fd, VIDIOC_S_PARM, parm)
    except OSError:
        pass
    fcntl.ioctl(fd, VIDIOC_STREAMON, struct.pack('<I', BUF_TYPE_VIDEO_OUTPUT))
    if a.pidfile:
        with open(a.pidfile, 'w') as f:
            f.write(f"{os.getpid()}\n")
    print(f"producer: {a.device} ({driver}) {w}x{h} MJPG sizeimage={sizeimage}, "
          f"{len(frames)} distinct frames (max {maxsz} B) at {a.fps:g} fps", flush=True)

    period = 1.0 / a.fps
    t0 = time.monotonic()
    n = 0
    try:
        while not stop:
            if a.count and n >= a.count:
                break
            now = time.monotonic()
            if a.seconds and now - t0 >= a.seconds:
                break
            frame = frames[n % len(frames)]
            if len(frame) > sizeimage:
                print(f"producer: warning: frame {n} ({len(frame)} B) > sizeimage, truncated",
                      file=sys.stderr, flush=True)
            try:
                os.write(fd, frame)
            except InterruptedError:
                continue
            n += 1
            delay = t0 + n * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:          # fell far behind (loaded TCG guest): resync, no burst
                t0 = time.monotonic() - n * period
    finally:
        try:
            fcntl.ioctl(fd, VIDIOC_STREAMOFF, struct.pack('<I', BUF_TYPE_VIDEO_OUTPUT))
        except OSError:
            pass
        os.close(fd)
        if a.pidfile:
            try:
                os.unlink(a.pidfile)
            except OSError:
                pass
        print(f"producer: wrote {n} frames in {time.monotonic() - t0:.2f}s", flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
