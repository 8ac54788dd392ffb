//! The video worker thread: at most `fps` (≤ 1) times a second, takes the newest camera frame,
//! runs it through the JPEG pipeline and hands the result to the session — only while a session
//! is open and, with `send = "while_speaking"`, only while the user speaks. JPEG work stays on
//! this thread so it can never delay the mic stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::capture::{FrameSlot, VideoStats};
use super::jpeg::{Pipeline, PipelineConfig};
use crate::audio::Recent;

/// How long after the last loud mic chunk the user still counts as speaking.
const SPEECH_HANGOVER: Duration = Duration::from_millis(1500);

/// Shared switches between the daemon and the worker.
#[derive(Debug)]
pub struct VideoGate {
    active: AtomicBool,
    /// The mic stream pauses in an empty room (`pause_on_silence_s`): so do the frames.
    paused: AtomicBool,
    while_speaking: bool,
    speech: Recent,
}

impl VideoGate {
    pub fn new(while_speaking: bool) -> Self {
        VideoGate {
            active: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            while_speaking,
            speech: Recent::default(),
        }
    }

    /// A session is ready to take frames (or not).
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    pub fn set_paused(&self, on: bool) {
        self.paused.store(on, Ordering::Relaxed);
    }

    /// The user is speaking now.
    pub fn speech(&self) {
        self.speech.touch();
    }

    pub fn allowed(&self) -> bool {
        self.active.load(Ordering::Relaxed)
            && !self.paused.load(Ordering::Relaxed)
            && (!self.while_speaking || self.speech.within(SPEECH_HANGOVER))
    }
}

pub struct WorkerParams {
    /// Frames per second, 0 < fps ≤ 1.
    pub fps: f64,
    pub pipeline: PipelineConfig,
}

pub fn spawn(
    params: WorkerParams,
    slot: Arc<FrameSlot>,
    gate: Arc<VideoGate>,
    out: mpsc::Sender<Vec<u8>>,
    stop: Arc<AtomicBool>,
    stats: Arc<VideoStats>,
) -> std::io::Result<JoinHandle<()>> {
    // Never more than one frame a second: the API's limit.
    let period = Duration::from_secs_f64(1.0 / params.fps.clamp(0.01, 1.0));
    std::thread::Builder::new()
        .name("video-worker".into())
        .spawn(move || {
            let mut pipeline = Pipeline::new(params.pipeline);
            let mut frame = Vec::new();
            let mut last_seq = 0u64;
            let mut next = Instant::now() + period;
            while !stop.load(Ordering::Relaxed) && !out.is_closed() {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(100)));
                    continue;
                }
                if !gate.allowed() {
                    // Check again soon: sending resumes as soon as a session (or speech) does.
                    next = now + Duration::from_millis(100);
                    continue;
                }
                let Some(seq) = slot.take_newer(last_seq, &mut frame) else {
                    next = now + Duration::from_millis(100);
                    continue;
                };
                last_seq = seq;
                next = now + period;
                match pipeline.process(&frame) {
                    Ok(p) => {
                        stats.processed.fetch_add(1, Ordering::Relaxed);
                        // A frame the session cannot take right now is stale a second later.
                        let _ = out.try_send(p.jpeg.to_vec());
                    }
                    Err(e) => {
                        stats.corrupt.fetch_add(1, Ordering::Relaxed);
                        log::debug!("skipping a camera frame: {e}");
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_rules() {
        let g = VideoGate::new(false);
        assert!(!g.allowed(), "no session");
        g.set_active(true);
        assert!(g.allowed());
        let g = VideoGate::new(true);
        g.set_active(true);
        assert!(!g.allowed(), "nobody spoke yet");
        g.speech();
        assert!(g.allowed());
    }
}
