//! Camera capture thread: V4L2 MJPEG (or a file or pipe of JPEG frames) → the newest frame in a
//! slot.
//!
//! The camera runs at its slowest frame interval and every frame is dequeued, so the slot
//! always holds the newest picture: if we stopped dequeuing, the kernel queue would fill and the
//! next frame we took would be seconds old. Frames are sliced to `bytesused`, cut at their EOI
//! marker (drivers pad them), and checked before anyone decodes them. A camera that stalls
//! (2 s without a frame) or disappears is reopened with backoff, forever; the audio session
//! never waits for it.

use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use v4l::buffer::Type;
use v4l::framesize::FrameSizeEnum;
use v4l::io::traits::CaptureStream;
use v4l::prelude::MmapStream;
use v4l::video::capture::Parameters;
use v4l::video::Capture;
use v4l::{Device, FourCC, Fraction};

use super::jpeg::trim_to_eoi;
use crate::service::error_chain;

/// UVC cameras often deliver black or half-exposed pictures right after stream-on.
const DISCARD_AFTER_STREAMON: u32 = 3;
/// A dequeue that waits longer than this means the camera stalled.
const DEQUEUE_TIMEOUT: Duration = Duration::from_secs(2);
/// Frame rate of a file source (`device` names a regular file): a typical webcam.
pub const FILE_SOURCE_FPS: u32 = 30;
/// A pipe source's frame may be at most this long; a longer run without an end-of-image marker
/// is dropped and the stream resynchronised at the next start-of-image.
pub const MAX_PIPE_FRAME_BYTES: usize = 8 << 20;

fn mjpg() -> FourCC {
    FourCC::new(b"MJPG")
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("cannot open camera `{device}`")]
    Open {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("camera `{device}` offers no MJPEG mode (it offers: {offered}); gemlive needs an MJPEG camera")]
    NoMjpeg { device: String, offered: String },
    #[error("camera `{device}` refused {what}")]
    Setup {
        device: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("camera `{device}` sent no frame for {}s", DEQUEUE_TIMEOUT.as_secs())]
    Stalled { device: String },
    #[error("camera `{device}` went away")]
    Gone {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{device}` holds no complete JPEG frame")]
    EmptyFile { device: String },
}

/// Counters shared with the daemon.
#[derive(Debug, Default)]
pub struct VideoStats {
    pub captured: AtomicU64,
    pub corrupt: AtomicU64,
    pub stalls: AtomicU64,
    pub processed: AtomicU64,
    pub sent: AtomicU64,
}

impl VideoStats {
    pub fn get(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }

    fn inc(v: &AtomicU64) {
        v.fetch_add(1, Ordering::Relaxed);
    }
}

/// The newest frame, overwritten in place (its buffer is reused, so steady state allocates
/// nothing).
#[derive(Debug, Default)]
pub struct FrameSlot {
    inner: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    seq: u64,
    data: Vec<u8>,
}

impl FrameSlot {
    pub fn put(&self, jpeg: &[u8]) {
        if let Ok(mut s) = self.inner.lock() {
            s.seq += 1;
            s.data.clear();
            s.data.extend_from_slice(jpeg);
        }
    }

    /// Swaps the newest frame into `buf` if it is newer than `after`; returns its sequence.
    pub fn take_newer(&self, after: u64, buf: &mut Vec<u8>) -> Option<u64> {
        let mut s = self.inner.lock().ok()?;
        if s.seq <= after || s.data.is_empty() {
            return None;
        }
        std::mem::swap(&mut s.data, buf);
        s.data.clear();
        Some(s.seq)
    }

    pub fn seq(&self) -> u64 {
        self.inner.lock().map(|s| s.seq).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct CameraParams {
    pub device: String,
    /// Force this capture mode instead of choosing one.
    pub capture_size: Option<(u32, u32)>,
    /// Output size and how the frame is fitted to it: they say which camera mode is enough.
    pub target: u32,
    pub geometry: crate::video::jpeg::Geometry,
}

/// Picks the capture mode: the smallest (least to decode) that still fills the output at full
/// resolution, else the largest there is. Letterbox and fit scale the long side to `target`,
/// so a mode whose long side covers it is enough (800×600 for 768, not 1920×1080); crop and
/// stretch scale the short side to it.
pub fn choose_mode(
    sizes: &[(u32, u32)],
    target: u32,
    geometry: crate::video::jpeg::Geometry,
) -> Option<(u32, u32)> {
    use crate::video::jpeg::Geometry;
    let area = |s: &(u32, u32)| u64::from(s.0) * u64::from(s.1);
    let side = |s: &(u32, u32)| match geometry {
        Geometry::Letterbox | Geometry::Fit => s.0.max(s.1),
        Geometry::Crop | Geometry::Stretch => s.0.min(s.1),
    };
    sizes
        .iter()
        .filter(|s| side(s) >= target)
        .min_by_key(|s| area(s))
        .or_else(|| sizes.iter().max_by_key(|s| area(s)))
        .copied()
}

/// The slowest frame interval offered (seconds per frame is numerator/denominator).
pub fn slowest(intervals: &[Fraction]) -> Option<Fraction> {
    intervals
        .iter()
        .filter(|f| f.denominator > 0)
        .max_by(|a, b| {
            let x = u64::from(a.numerator) * u64::from(b.denominator);
            let y = u64::from(b.numerator) * u64::from(a.denominator);
            x.cmp(&y)
        })
        .copied()
}

/// Starts the capture thread; it stops when `stop` is set.
pub fn spawn(
    params: CameraParams,
    slot: Arc<FrameSlot>,
    stop: Arc<AtomicBool>,
    stats: Arc<VideoStats>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("v4l2-capture".into())
        .spawn(move || {
            let mut failures = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let kind = std::fs::metadata(&params.device).map(|m| m.file_type());
                let r = if kind.as_ref().is_ok_and(std::fs::FileType::is_file) {
                    file_source(&params.device, &slot, &stop, &stats)
                } else if kind.as_ref().is_ok_and(|k| k.is_fifo()) {
                    pipe_source(&params.device, &slot, &stop, &stats)
                } else {
                    v4l2_source(&params, &slot, &stop, &stats, &mut failures)
                };
                match r {
                    Ok(()) => return,
                    Err(e) => {
                        if matches!(e, CameraError::Stalled { .. }) {
                            VideoStats::inc(&stats.stalls);
                        }
                        // Once loudly, then quietly: an unplugged camera must not flood the
                        // journal, and audio goes on without it.
                        if failures == 0 {
                            log::warn!("{}; video paused, retrying with backoff", error_chain(&e));
                        } else {
                            log::debug!("camera still failing: {}", error_chain(&e));
                        }
                        let delay = crate::audio::reopen_delay(failures);
                        failures = failures.saturating_add(1);
                        let until = Instant::now() + delay;
                        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
        })
}

/// Describes the formats a device offers, for the "no MJPEG" error.
fn offered_formats(dev: &Device) -> String {
    dev.enum_formats()
        .map(|f| {
            f.iter()
                .map(|d| format!("{} ({})", d.fourcc, d.description))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|e| format!("unknown: {e}"))
}

/// MJPEG sizes a device offers (stepwise ranges expanded to their discrete points).
pub fn mjpeg_sizes(dev: &Device) -> std::io::Result<Vec<(u32, u32)>> {
    let mut sizes = Vec::new();
    for fs in dev.enum_framesizes(mjpg())? {
        match fs.size {
            FrameSizeEnum::Discrete(d) => sizes.push((d.width, d.height)),
            other => sizes.extend(other.to_discrete().into_iter().map(|d| (d.width, d.height))),
        }
    }
    Ok(sizes)
}

/// Frame intervals offered for one MJPEG size.
pub fn mjpeg_intervals(dev: &Device, w: u32, h: u32) -> std::io::Result<Vec<Fraction>> {
    use v4l::frameinterval::FrameIntervalEnum;
    Ok(dev
        .enum_frameintervals(mjpg(), w, h)?
        .into_iter()
        .flat_map(|i| match i.interval {
            FrameIntervalEnum::Discrete(f) => vec![f],
            FrameIntervalEnum::Stepwise(s) => vec![s.min, s.max],
        })
        .collect())
}

fn v4l2_source(
    p: &CameraParams,
    slot: &FrameSlot,
    stop: &AtomicBool,
    stats: &VideoStats,
    failures: &mut u32,
) -> Result<(), CameraError> {
    let device = p.device.clone();
    let dev = Device::with_path(&device).map_err(|source| CameraError::Open {
        device: device.clone(),
        source,
    })?;
    let setup = |what: &str| {
        let device = device.clone();
        let what = what.to_string();
        move |source| CameraError::Setup {
            device,
            what,
            source,
        }
    };
    let has_mjpeg = dev
        .enum_formats()
        .map_err(setup("listing its formats"))?
        .iter()
        .any(|d| d.fourcc == mjpg());
    if !has_mjpeg {
        return Err(CameraError::NoMjpeg {
            offered: offered_formats(&dev),
            device,
        });
    }
    let (w, h) = match p.capture_size {
        Some(s) => s,
        None => {
            let sizes = mjpeg_sizes(&dev).map_err(setup("listing its MJPEG sizes"))?;
            choose_mode(&sizes, p.target, p.geometry).unwrap_or((1280, 720))
        }
    };
    let mut fmt = dev.format().map_err(setup("reporting its format"))?;
    fmt.width = w;
    fmt.height = h;
    fmt.fourcc = mjpg();
    let fmt = dev
        .set_format(&fmt)
        .map_err(setup(&format!("MJPEG {w}x{h}")))?;
    if fmt.fourcc != mjpg() {
        return Err(CameraError::NoMjpeg {
            offered: offered_formats(&dev),
            device,
        });
    }
    // The slowest rate the camera offers: we keep only one frame a second anyway.
    let interval = mjpeg_intervals(&dev, fmt.width, fmt.height)
        .ok()
        .and_then(|i| slowest(&i));
    if let Some(f) = interval {
        if let Err(e) = dev.set_params(&Parameters::new(f)) {
            log::debug!("camera `{device}` refused frame interval {f}: {e}");
        }
    }
    let mut stream = MmapStream::with_buffers(&dev, Type::VideoCapture, 4)
        .map_err(setup("memory-mapped streaming"))?;
    stream.set_timeout(DEQUEUE_TIMEOUT);
    if *failures > 0 {
        log::info!("camera `{device}` is back");
    }
    log::info!(
        "camera `{device}`: MJPEG {}x{}{}",
        fmt.width,
        fmt.height,
        interval
            .map(|f| format!(
                ", {:.1} frames/s",
                f64::from(f.denominator) / f64::from(f.numerator.max(1))
            ))
            .unwrap_or_default()
    );
    let mut seen = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let (buf, meta) = match stream.next() {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(CameraError::Stalled { device })
            }
            Err(source) => return Err(CameraError::Gone { device, source }),
        };
        *failures = 0;
        seen = seen.saturating_add(1);
        if seen <= DISCARD_AFTER_STREAMON {
            continue;
        }
        VideoStats::inc(&stats.captured);
        // `buf` is the whole mmap area: only `bytesused` of it is this frame.
        let used = (meta.bytesused as usize).min(buf.len());
        if meta.flags.contains(v4l::buffer::Flags::ERROR) {
            VideoStats::inc(&stats.corrupt);
            continue;
        }
        match trim_to_eoi(&buf[..used]) {
            Ok(jpeg) => slot.put(jpeg),
            Err(e) => {
                VideoStats::inc(&stats.corrupt);
                log::debug!("skipping a corrupt camera frame ({used} bytes): {e}");
            }
        }
    }
    Ok(())
}

/// The frames of a file of concatenated JPEGs.
#[derive(Debug, Default)]
pub struct SplitFrames<'a> {
    /// Each structurally sound frame, cut at its EOI.
    pub frames: Vec<&'a [u8]>,
    /// Start-of-image markers whose frame was broken (cut short, bad markers) and skipped.
    pub broken: usize,
}

/// Splits a file of concatenated JPEGs into frames. A broken frame is skipped and the search
/// goes on at the next start-of-image marker (FF D8): one bad frame in a recording must not
/// lose every frame after it. Inside scan data FF D8 cannot occur by accident (FF is
/// byte-stuffed), so a frame cut short is left at the next frame's SOI.
pub fn split_frames(data: &[u8]) -> SplitFrames<'_> {
    let mut out = SplitFrames::default();
    let mut i = 0;
    while let Some(start) = data
        .get(i..)
        .and_then(|rest| rest.windows(2).position(|w| w == [0xFF, 0xD8]))
    {
        let at = i + start;
        match data.get(at..).map(trim_to_eoi) {
            Some(Ok(f)) => {
                i = at + f.len();
                out.frames.push(f);
            }
            Some(Err(e)) => {
                log::debug!("skipping a broken frame at byte {at}: {e}");
                out.broken += 1;
                i = at + 2;
            }
            None => break,
        }
    }
    out
}

/// A file of JPEG frames played as a camera at `FILE_SOURCE_FPS`, looping: for tests, demos
/// and for checking the pipeline without a camera.
fn file_source(
    path: &str,
    slot: &FrameSlot,
    stop: &AtomicBool,
    stats: &VideoStats,
) -> Result<(), CameraError> {
    let data = std::fs::read(path).map_err(|source| CameraError::Open {
        device: path.to_string(),
        source,
    })?;
    let SplitFrames { frames, broken } = split_frames(&data);
    if frames.is_empty() {
        return Err(CameraError::EmptyFile {
            device: path.to_string(),
        });
    }
    let skipped = match broken {
        0 => String::new(),
        1 => " (1 broken frame skipped)".to_string(),
        n => format!(" ({n} broken frames skipped)"),
    };
    log::info!(
        "camera `{path}`: a file of {} JPEG frames{skipped}, played at {FILE_SOURCE_FPS} \
         frames/s",
        frames.len()
    );
    // Counted once, not on every loop through the file: they are the same frames.
    stats.corrupt.fetch_add(broken as u64, Ordering::Relaxed);
    let period = Duration::from_secs(1) / FILE_SOURCE_FPS;
    let mut next = Instant::now();
    for f in frames.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        next += period;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        VideoStats::inc(&stats.captured);
        slot.put(f);
    }
    Ok(())
}

/// Cuts a stream of concatenated JPEGs (a pipe) into frames as the bytes arrive. Bytes before a
/// start-of-image are skipped, a broken frame is skipped and the search goes on at the next
/// start-of-image, and a frame longer than `max` bytes is dropped: the buffer never grows past
/// `max` plus one read.
#[derive(Debug)]
pub struct StreamSplitter {
    buf: Vec<u8>,
    max: usize,
    /// Frames skipped as broken or too long.
    pub broken: u64,
}

impl StreamSplitter {
    pub fn new(max: usize) -> Self {
        StreamSplitter {
            buf: Vec::new(),
            max,
            broken: 0,
        }
    }

    /// Appends `bytes` and hands every frame now complete to `frame`, in order.
    pub fn push(&mut self, bytes: &[u8], mut frame: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(bytes);
        let mut i = 0;
        loop {
            let Some(at) = self
                .buf
                .get(i..)
                .and_then(|rest| rest.windows(2).position(|w| w == [0xFF, 0xD8]))
                .map(|p| i + p)
            else {
                // Keep a trailing FF: it may be the first half of the next SOI.
                i = if self.buf.last() == Some(&0xFF) {
                    self.buf.len() - 1
                } else {
                    self.buf.len()
                };
                break;
            };
            match trim_to_eoi(&self.buf[at..]) {
                Ok(f) => {
                    frame(f);
                    i = at + f.len();
                }
                Err(super::jpeg::FrameError::NoEoi | super::jpeg::FrameError::Truncated)
                    if self.buf.len() - at <= self.max =>
                {
                    // Not complete yet: wait for more bytes.
                    i = at;
                    break;
                }
                Err(e) => {
                    log::debug!("skipping a broken frame in a camera stream: {e}");
                    self.broken += 1;
                    i = at + 2;
                }
            }
        }
        self.buf.drain(..i.min(self.buf.len()));
    }
}

/// A named pipe carrying an MJPEG stream (e.g. `rpicam-vid --codec mjpeg -o <fifo>` for a CSI
/// camera, or a test): frames are taken as they come. No frame for `DEQUEUE_TIMEOUT` is a stall,
/// counted and logged once per episode; the pipe stays open, so a writer that comes back (or a
/// new one) goes on where it stopped.
fn pipe_source(
    path: &str,
    slot: &FrameSlot,
    stop: &AtomicBool,
    stats: &VideoStats,
) -> Result<(), CameraError> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
    let mut pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| CameraError::Open {
            device: path.to_string(),
            source,
        })?;
    log::info!("camera `{path}`: an MJPEG stream from a pipe");
    let mut split = StreamSplitter::new(MAX_PIPE_FRAME_BYTES);
    let mut chunk = vec![0u8; 64 << 10];
    let mut last_frame = Instant::now();
    let mut stalled = false;
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd that lives across the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        let mut got = 0;
        if ready > 0 {
            match pipe.read(&mut chunk) {
                Ok(n) => got = n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CameraError::Gone {
                        device: path.to_string(),
                        source,
                    })
                }
            }
            if got == 0 {
                // No writer (it went away, or there never was one): wait for one without
                // spinning on the hang-up.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let before = split.broken;
        split.push(&chunk[..got], |f| {
            VideoStats::inc(&stats.captured);
            slot.put(f);
            last_frame = Instant::now();
        });
        stats
            .corrupt
            .fetch_add(split.broken - before, Ordering::Relaxed);
        if last_frame.elapsed() >= DEQUEUE_TIMEOUT {
            if !stalled {
                stalled = true;
                VideoStats::inc(&stats.stalls);
                log::warn!(
                    "camera `{path}` sent no frame for {} s; video paused until it does",
                    DEQUEUE_TIMEOUT.as_secs()
                );
            }
        } else if stalled {
            stalled = false;
            log::info!("camera `{path}` is sending frames again");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_choice_prefers_the_smallest_covering_mode() {
        let sizes = [
            (1920, 1080),
            (1280, 720),
            (800, 600),
            (640, 480),
            (1024, 768),
        ];
        use crate::video::jpeg::Geometry::{Crop, Fit, Letterbox, Stretch};
        // letterbox / fit: the long side has to cover the output
        assert_eq!(choose_mode(&sizes, 768, Letterbox), Some((800, 600)));
        assert_eq!(choose_mode(&sizes, 1000, Fit), Some((1024, 768)));
        assert_eq!(choose_mode(&sizes, 600, Letterbox), Some((640, 480)));
        let wide = [(1920, 1080), (1280, 720), (1024, 576), (640, 360)];
        assert_eq!(choose_mode(&wide, 768, Letterbox), Some((1024, 576)));
        // crop / stretch: the short side
        assert_eq!(choose_mode(&sizes, 768, Crop), Some((1024, 768)));
        assert_eq!(choose_mode(&sizes, 600, Stretch), Some((800, 600)));
        assert_eq!(choose_mode(&wide, 768, Crop), Some((1920, 1080)));
        assert_eq!(
            choose_mode(&sizes, 2000, Crop),
            Some((1920, 1080)),
            "none covers: largest"
        );
        assert_eq!(choose_mode(&[], 768, Letterbox), None);
    }

    #[test]
    fn slowest_interval() {
        let f = |n, d| Fraction::new(n, d);
        let s = slowest(&[f(1, 30), f(1, 5), f(1, 15), f(2, 15)]).unwrap();
        assert_eq!((s.numerator, s.denominator), (1, 5));
        assert!(slowest(&[]).is_none());
    }

    /// Three good frames and a recording of them with damage: junk first, good 0, good 1 cut
    /// short in its scan data (the next SOI follows at once), good 2, good 1 cut short in its
    /// headers then padding (as a camera's buffer might leave it), good 0, and good 1 cut short
    /// at the very end.
    fn damaged_recording() -> (Vec<Vec<u8>>, Vec<u8>) {
        let good: Vec<Vec<u8>> = (0..3).map(crate::demo::camera_frame).collect();
        let mut data = b"junk before the first frame".to_vec();
        data.extend_from_slice(&good[0]);
        data.extend_from_slice(&good[1][..good[1].len() / 2]);
        data.extend_from_slice(&good[2]);
        data.extend_from_slice(&good[1][..20]);
        data.extend_from_slice(&[0; 100]);
        data.extend_from_slice(&good[0]);
        data.extend_from_slice(&good[1][..good[1].len() - 10]);
        (good, data)
    }

    #[test]
    fn a_stream_is_split_whatever_the_read_sizes() {
        let (good, data) = damaged_recording();
        // Its last frame is still arriving: neither a frame nor broken yet.
        for read in [1, 7, 4096, data.len()] {
            let mut split = StreamSplitter::new(1 << 20);
            let mut frames = Vec::new();
            for c in data.chunks(read) {
                split.push(c, |f| frames.push(f.to_vec()));
            }
            assert_eq!(
                frames,
                [good[0].clone(), good[2].clone(), good[0].clone()],
                "reads of {read}"
            );
            assert_eq!(split.broken, 2, "reads of {read}");
            assert!(
                split.buf.len() < good[1].len(),
                "only the pending frame is kept"
            );
            // The rest arrives: the pending frame completes.
            split.push(&good[1][good[1].len() - 10..], |f| frames.push(f.to_vec()));
            assert_eq!(frames.last(), Some(&good[1]));
        }
        // A frame longer than the bound is dropped, and the next one still comes through.
        let max = good.iter().map(Vec::len).max().unwrap_or(0) + 16;
        let mut split = StreamSplitter::new(max);
        let mut frames = Vec::new();
        split.push(&good[1][..good[1].len() - 2], |f| frames.push(f.to_vec()));
        for _ in 0..3 {
            split.push(&vec![0x55; max], |f| frames.push(f.to_vec()));
            assert!(split.buf.len() <= 2 * max, "bounded: {}", split.buf.len());
        }
        split.push(&good[0], |f| frames.push(f.to_vec()));
        assert_eq!(frames, [good[0].clone()]);
        assert_eq!(split.broken, 1);
    }

    #[test]
    fn split_frames_goes_on_after_a_broken_frame() {
        let (good, data) = damaged_recording();
        let s = split_frames(&data);
        assert_eq!(s.frames, [&good[0][..], &good[2][..], &good[0][..]]);
        assert_eq!(s.broken, 3);

        let s = split_frames(&good[1][..100]);
        assert!(s.frames.is_empty());
        assert_eq!(s.broken, 1);
        assert!(split_frames(b"").frames.is_empty());
        assert!(split_frames(&[0xFF]).frames.is_empty());
        assert_eq!(split_frames(&[0xFF, 0xD8]).broken, 1);
    }

    #[test]
    fn slot_keeps_the_newest_and_reuses_buffers() {
        let slot = FrameSlot::default();
        let mut buf = Vec::new();
        assert_eq!(slot.take_newer(0, &mut buf), None);
        slot.put(b"one");
        slot.put(b"two");
        assert_eq!(slot.take_newer(0, &mut buf), Some(2));
        assert_eq!(buf, b"two");
        assert_eq!(slot.take_newer(2, &mut buf), None, "nothing newer");
    }
}
