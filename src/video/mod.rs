//! Camera edge: V4L2 MJPEG capture on its own thread, decimation to at most 1 frame/s, and the
//! JPEG pipeline (decode → resize → encode) that turns a camera frame into the 768×768 JPEG the
//! Live API takes.

pub mod capture;
pub mod decode;
pub mod encode;
pub mod jpeg;
pub mod settings;
pub mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use capture::{CameraParams, FrameSlot, VideoStats};
use jpeg::PipelineConfig;
use settings::{VideoConfig, VideoSend};
use worker::{VideoGate, WorkerParams};

impl From<&VideoConfig> for CameraParams {
    fn from(cfg: &VideoConfig) -> Self {
        CameraParams {
            device: cfg.device.clone(),
            capture_size: cfg.capture_size,
            target: cfg.size,
            geometry: cfg.geometry,
        }
    }
}

impl From<&VideoConfig> for PipelineConfig {
    fn from(cfg: &VideoConfig) -> Self {
        PipelineConfig {
            size: cfg.size,
            geometry: cfg.geometry,
            quality: cfg.quality,
        }
    }
}

/// The running camera edge: processed JPEGs come out of `rx`; `gate` says when to send.
pub struct Video {
    pub rx: mpsc::Receiver<Vec<u8>>,
    pub gate: Arc<VideoGate>,
    pub stats: Arc<VideoStats>,
    /// The newest camera frame, for a look on demand.
    slot: Arc<FrameSlot>,
    pipeline: PipelineConfig,
    threads: Vec<JoinHandle<()>>,
}

impl Video {
    /// Starts the capture and worker threads; they end when `stop` is set.
    pub fn start(cfg: &VideoConfig, stop: Arc<AtomicBool>) -> std::io::Result<Video> {
        let slot = Arc::new(FrameSlot::default());
        let stats = Arc::new(VideoStats::default());
        let gate = Arc::new(VideoGate::new(cfg.send == VideoSend::WhileSpeaking));
        // One frame in flight at most: a frame that waits is a stale frame.
        let (tx, rx) = mpsc::channel(1);
        let capture = capture::spawn(
            CameraParams::from(cfg),
            slot.clone(),
            stop.clone(),
            stats.clone(),
        )?;
        let worker = worker::spawn(
            WorkerParams {
                fps: cfg.fps,
                pipeline: PipelineConfig::from(cfg),
            },
            slot.clone(),
            gate.clone(),
            tx,
            stop,
            stats.clone(),
        )?;
        Ok(Video {
            rx,
            gate,
            stats,
            slot,
            pipeline: PipelineConfig::from(cfg),
            threads: vec![capture, worker],
        })
    }

    /// A frame captured after this call, through the pipeline, as the JPEG to send: the `look`
    /// tool. Blocking (waits up to `within` for the camera, then decodes and encodes): run it
    /// off the loop.
    pub fn look_blocking(
        slot: &FrameSlot,
        pipeline: PipelineConfig,
        within: std::time::Duration,
    ) -> Result<Vec<u8>, String> {
        let after = slot.seq();
        let until = std::time::Instant::now() + within;
        let mut frame = Vec::new();
        let mut pipe = jpeg::Pipeline::new(pipeline);
        let mut last_error = None;
        while std::time::Instant::now() < until {
            match slot.take_newer(after, &mut frame) {
                Some(_) => match pipe.process(&frame) {
                    Ok(p) => return Ok(p.jpeg.to_vec()),
                    Err(e) => last_error = Some(e.to_string()),
                },
                None => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        Err(match last_error {
            Some(e) => format!("the camera's frames are broken ({e})"),
            None => format!(
                "the camera sent no frame for {:.0} s; it may be unplugged or stalled",
                within.as_secs_f64()
            ),
        })
    }

    /// What [`Video::look_blocking`] needs, to move into a blocking task.
    pub fn look_parts(&self) -> (Arc<FrameSlot>, PipelineConfig) {
        (self.slot.clone(), self.pipeline)
    }

    /// Waits for the threads (after `stop` was set), but not for one stuck in a driver call.
    pub fn join(self) {
        drop(self.rx);
        for t in self.threads {
            crate::service::join_or_leave(t, "camera");
        }
    }
}

/// `list-devices`, camera part: every V4L2 capture node with its MJPEG sizes and rates.
pub fn list_cameras() -> String {
    use v4l::video::Capture;
    let mut nodes: Vec<std::path::PathBuf> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("video"))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort_by_key(|p| {
        let n = p.to_string_lossy();
        (n.len(), n.into_owned())
    });
    let mut out = String::new();
    for node in nodes {
        let Ok(dev) = v4l::Device::with_path(&node) else {
            out.push_str(&format!(
                "{}  (cannot open: check group `video`)\n",
                node.display()
            ));
            continue;
        };
        let Ok(caps) = dev.query_caps() else { continue };
        if !caps
            .capabilities
            .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        {
            continue; // metadata nodes, outputs
        }
        out.push_str(&format!(
            "{}  ({}, driver {})\n",
            node.display(),
            caps.card,
            caps.driver
        ));
        let sizes = capture::mjpeg_sizes(&dev).unwrap_or_default();
        if sizes.is_empty() {
            let formats: Vec<String> = dev
                .enum_formats()
                .map(|f| f.iter().map(|d| d.fourcc.to_string()).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "    no MJPEG mode (offers {}): not usable by gemlive\n",
                formats.join(" ")
            ));
            continue;
        }
        for (w, h) in sizes {
            let rates: Vec<String> = capture::mjpeg_intervals(&dev, w, h)
                .unwrap_or_default()
                .iter()
                .filter(|f| f.numerator > 0)
                .map(|f| format!("{:.4}", f64::from(f.denominator) / f64::from(f.numerator)))
                .map(|s| s.trim_end_matches('0').trim_end_matches('.').to_string())
                .collect();
            out.push_str(&format!("    MJPEG {w}x{h} @ {} fps\n", rates.join(" ")));
        }
    }
    if out.is_empty() {
        out.push_str("no V4L2 cameras found\n");
    }
    out
}

/// What `gemlive snapshot` got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The processed JPEG, as it would be sent.
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Broken frames passed over before this one (dropped by the capture thread or refused by
    /// the pipeline).
    pub skipped: u64,
}

/// How many frames `snapshot` tries after the first one arrives before it gives up...
pub const SNAPSHOT_MAX_FRAMES: u32 = 30;
/// ...and for how long: a camera that sends only broken frames is broken.
pub const SNAPSHOT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// `gemlive snapshot`: one frame through the full pipeline, for checking a camera over SSH.
/// `timeout` bounds the wait for the first frame; a broken frame is skipped and the next one
/// tried (cameras send a bad frame now and then, right after start-up most of all), up to
/// [`SNAPSHOT_MAX_FRAMES`] frames or [`SNAPSHOT_RETRY`].
pub fn snapshot(cfg: &VideoConfig, timeout: std::time::Duration) -> anyhow::Result<Snapshot> {
    use anyhow::Context;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    // The capture thread retries a missing device forever (a daemon waits for a camera to be
    // plugged in); a one-shot check should say so at once instead of after the timeout.
    if !std::path::Path::new(&cfg.device).exists() {
        anyhow::bail!(
            "camera `{}` does not exist: is it plugged in? (`gemlive list-devices` lists cameras; \
             a Pi CSI camera needs libcamera's V4L2 layer)",
            cfg.device
        );
    }
    let slot = Arc::new(FrameSlot::default());
    let stats = Arc::new(VideoStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let t = capture::spawn(
        CameraParams::from(cfg),
        slot.clone(),
        stop.clone(),
        stats.clone(),
    )
    .context("starting the camera thread")?;
    let mut until = Instant::now() + timeout;
    let mut retrying = false;
    let mut pipeline = jpeg::Pipeline::new(PipelineConfig::from(cfg));
    let mut frame = Vec::new();
    let mut seq = 0;
    let mut tried = 0u32;
    let mut refused = 0u64;
    let mut last_error: Option<jpeg::FrameError> = None;
    let mut result: Option<(Vec<u8>, u32, u32)> = None;
    while tried < SNAPSHOT_MAX_FRAMES && Instant::now() <= until {
        let Some(s) = slot.take_newer(seq, &mut frame) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        seq = s;
        tried += 1;
        if !retrying {
            retrying = true;
            until = Instant::now() + SNAPSHOT_RETRY;
        }
        match pipeline.process(&frame) {
            Ok(out) => {
                result = Some((out.jpeg.to_vec(), out.width, out.height));
                break;
            }
            Err(e) => {
                log::debug!("snapshot: skipping a broken frame: {e}");
                refused += 1;
                last_error = Some(e);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    let skipped = refused + VideoStats::get(&stats.corrupt);
    match (result, last_error) {
        (Some((jpeg, width, height)), _) => Ok(Snapshot {
            jpeg,
            width,
            height,
            skipped,
        }),
        (None, Some(e)) => Err(anyhow::Error::new(e).context(format!(
            "no usable frame from `{}`: {tried} frames tried, {skipped} broken frames skipped; \
             the last one was refused",
            cfg.device
        ))),
        (None, None) => anyhow::bail!(
            "no frame from `{}` within {} s (see the warning above; `gemlive list-devices` lists cameras)",
            cfg.device,
            timeout.as_secs()
        ),
    }
}

/// Peak signal-to-noise ratio of two 8-bit images of the same length, dB (the video tests'
/// measure of "the same picture").
#[cfg(test)]
pub(crate) fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) / (se / a.len() as f64).max(1e-9)).log10()
}
