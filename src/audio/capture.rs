//! Microphone capture thread: ALSA → `chunk_ms` chunks of 16 kHz S16_LE mono → a channel.
//!
//! The thread owns the PCM. Reads are one 20 ms period each; whole chunks are handed to the
//! async side with `try_send` so a stalled consumer can never block the device (a full channel
//! drops the chunk and counts it). xruns are recovered and counted; a vanished device is
//! reopened with backoff, forever.
//!
//! Unless `echo = "none"`, every period goes through the echo processor (`audio::echo`) on
//! this thread first: stamped with when it was captured, cancelled against the playback
//! stream, and gated while the canceller cannot be trusted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::service::error_chain;

use super::clean::{CleanSettings, Cleaner};
use super::echo::{EchoProcessor, EchoSettings, ReferenceRx};
use super::vad::VoiceDetector;
use super::{
    captured_at, is_device_gone, open_capture, reopen_delay, AudioError, AudioStats, Dir, PcmChunk,
    FRAME_BYTES, INPUT_RATE_HZ,
};

/// Echo telemetry goes to the log this often while the speaker plays.
const TELEMETRY_EVERY_S: f64 = 10.0;

/// Capture ring size: a few periods of slack against scheduling hiccups on a busy Pi.
const CAPTURE_BUFFER_MS: u32 = 200;

/// A capture device may run ahead of the wall clock by this much before we throttle it.
/// Real hardware never does (it cannot deliver audio before it is spoken); alsa-lib's `file`
/// and `null` PCMs do, without limit, and would flood the session with a recording.
const PACE_SLACK: Duration = Duration::from_millis(100);

/// From the capture thread to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureEvent {
    /// The echo gate's detector fired: the user talks over the reply. Stop it now, without
    /// waiting for the server's `interrupted`.
    BargeIn,
    /// The wake word was heard (probability of the detection, in percent).
    WakeWord { percent: u8 },
    /// The device does not open or failed; the thread retries with backoff. Audio arriving
    /// again means it is back.
    Failing(String),
}

/// From the daemon to the capture thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureControl {
    /// The button stopped the reply: open the echo gate and send the pre-roll.
    OpenGate,
}

pub struct CaptureParams {
    pub device: String,
    pub chunk_ms: u32,
    pub echo: EchoSettings,
    /// Noise suppression and gain after the echo stage.
    pub clean: CleanSettings,
    /// What the playback thread plays (the canceller's reference); `None` with `echo = none`.
    pub reference: Option<ReferenceRx>,
    /// Events for the daemon (sent with `try_send`: the device is never blocked).
    pub events: mpsc::Sender<CaptureEvent>,
    /// Requests from the daemon, taken once per period.
    pub control: std::sync::mpsc::Receiver<CaptureControl>,
    /// Set while someone talks (voice detection on the processed audio, `audio::vad`), read
    /// by the daemon with each chunk; `None`: the detector does not run.
    pub voice: Option<Arc<AtomicBool>>,
    /// The wake-word detector (`wake = "word"`): it hears the canceller's output before the
    /// echo gate, so the phrase works while the box talks.
    pub wake: Option<crate::wake::Detector>,
}

/// Starts the capture thread. It stops when `stop` is set or the receiver is dropped.
pub fn spawn(
    params: CaptureParams,
    tx: mpsc::Sender<PcmChunk>,
    stop: Arc<AtomicBool>,
    stats: Arc<AudioStats>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("alsa-capture".into())
        .spawn(move || run(params, tx, stop, stats))
}

/// Opens the device (retrying with backoff) until it works or we are told to stop.
fn run(
    mut params: CaptureParams,
    tx: mpsc::Sender<PcmChunk>,
    stop: Arc<AtomicBool>,
    stats: Arc<AudioStats>,
) {
    let mut failures = 0u32;
    // Built on this thread: the canceller's state lives where its frames are processed, and
    // survives a device reopen (the room did not change).
    let mut echo = EchoProcessor::new(params.echo);
    let mut clean = Cleaner::new(params.clean);
    let mut vad = params.voice.as_ref().map(|_| VoiceDetector::new());
    let mut wake = params.wake.take();
    if wake.is_some() {
        echo.keep_ungated();
    }
    while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
        let state = (&mut echo, &mut clean, vad.as_mut(), wake.as_mut());
        match capture_session(&params, state, &tx, &stop, &stats, &mut failures) {
            Ok(()) => return,
            Err(e) => {
                let delay = reopen_delay(failures);
                // Log the first failure loudly and repeats quietly: an unplugged USB mic
                // must not fill the journal.
                if failures == 0 {
                    log::error!("{}; retrying every few seconds", error_chain(&e));
                } else {
                    log::debug!("capture still failing: {}", error_chain(&e));
                }
                let _ = params.events.try_send(CaptureEvent::Failing(e.to_string()));
                failures = failures.saturating_add(1);
                sleep_unless_stopped(delay, &stop);
            }
        }
    }
}

/// One open PCM's lifetime. `Ok` = asked to stop; `Err` = reopen.
fn capture_session(
    params: &CaptureParams,
    (echo, clean, mut vad, mut wake): (
        &mut EchoProcessor,
        &mut Cleaner,
        Option<&mut VoiceDetector>,
        Option<&mut crate::wake::Detector>,
    ),
    tx: &mpsc::Sender<PcmChunk>,
    stop: &AtomicBool,
    stats: &AudioStats,
    failures: &mut u32,
) -> Result<(), AudioError> {
    let dev = params.device.as_str();
    let (pcm, period, buffer) = open_capture(dev, CAPTURE_BUFFER_MS)?;
    let io_err = |source: alsa::Error| AudioError::Io {
        device: dev.to_string(),
        dir: Dir::Capture,
        source,
    };
    let io = pcm.io_i16().map_err(io_err)?;
    if *failures > 0 {
        log::info!("capture device `{dev}` is back");
    }
    *failures = 0;
    log::info!(
        "capturing from `{dev}`: {INPUT_RATE_HZ} Hz S16_LE mono, period {period} frames, buffer {buffer} frames, chunks of {} ms; {}",
        params.chunk_ms,
        params.clean.describe()
    );

    let chunk_frames = (INPUT_RATE_HZ * params.chunk_ms / 1000) as usize;
    let mut period_buf = vec![0i16; period.max(1)];
    let mut chunk: PcmChunk = Vec::with_capacity(chunk_frames * FRAME_BYTES);
    // Processed mic audio of one read (a gate opening adds up to 500 ms of pre-roll).
    let mut processed: Vec<i16> = Vec::with_capacity(period.max(1) + INPUT_RATE_HZ as usize);
    let mut next_telemetry = 0.0f64;
    let mut ungated: Vec<i16> = Vec::with_capacity(INPUT_RATE_HZ as usize);
    let started = Instant::now();
    let mut frames_total: u64 = 0;

    while !stop.load(Ordering::Relaxed) {
        let n = match io.readi(&mut period_buf) {
            Ok(n) => n,
            Err(e) if is_device_gone(e.errno()) => {
                return Err(AudioError::DeviceGone {
                    device: dev.to_string(),
                    dir: Dir::Capture,
                    source: e,
                })
            }
            Err(e) => {
                AudioStats::add(&stats.capture_xruns, 1);
                log::warn!(
                    "capture xrun on `{dev}` ({e}); recovering (xruns so far: {})",
                    AudioStats::get(&stats.capture_xruns)
                );
                pcm.try_recover(e, true).map_err(io_err)?;
                pcm.start().ok();
                continue;
            }
        };
        frames_total += n as u64;
        AudioStats::add(&stats.captured_bytes, (n * FRAME_BYTES) as u64);
        let (t_first, now) = captured_at(&pcm, n);
        if frames_total % 16_000 < n as u64 {
            log::trace!(
                "capture: read {n}, t_first {t_first:.4}, now {now:.4}, total {frames_total}"
            );
        }
        if let Some(r) = &params.reference {
            r.drain_into(echo);
        }
        while let Ok(CaptureControl::OpenGate) = params.control.try_recv() {
            echo.open_gate();
        }
        echo.capture(t_first, &period_buf[..n]);
        processed.clear();
        if echo.process(now, &mut processed, &stats.echo) {
            log::info!(
                "local barge-in: the user talked over the reply (gate opening {})",
                stats.echo.gate_openings.load(Ordering::Relaxed)
            );
            // Full only if the daemon is many events behind; one is as good as several.
            let _ = params.events.try_send(CaptureEvent::BargeIn);
        }
        if echo.far_end_recent()
            && echo.mode() == crate::audio::EchoMode::Aec
            && now >= next_telemetry
        {
            if next_telemetry > 0.0 {
                log::info!("{}", stats.echo.summary());
            }
            next_telemetry = now + TELEMETRY_EVERY_S;
        }
        if let Some(w) = wake.as_deref_mut() {
            ungated.clear();
            echo.take_ungated(&mut ungated);
            match w.push(&ungated) {
                Ok(found) => {
                    for d in found {
                        log::info!(
                            "wake word \"{}\" heard (probability {:.2})",
                            crate::service::outside(&d.wake_word, 64),
                            d.probability
                        );
                        let percent = (d.probability * 100.0).round().clamp(0.0, 100.0) as u8;
                        // Full only if the daemon is many events behind: one is as good.
                        let _ = params.events.try_send(CaptureEvent::WakeWord { percent });
                    }
                }
                Err(e) => {
                    // A model that fails on audio fails on all of it: say so once, stop.
                    log::error!("the wake-word detector failed ({e}); it is off until restart");
                    wake = None;
                }
            }
        }
        // After the wake word took its (unprocessed) copy, before voice detection: a fan that
        // the suppressor removes does not keep the stream from pausing.
        clean.process(&mut processed);
        if let (Some(v), Some(flag)) = (vad.as_deref_mut(), &params.voice) {
            // Before the chunk goes out: the daemon reads the flag with it.
            if let Some(on) = v.push(&processed) {
                log::debug!("voice: {}", if on { "speech" } else { "quiet" });
                flag.store(on, Ordering::Relaxed);
            }
        }
        for s in &processed {
            chunk.extend_from_slice(&s.to_le_bytes());
            if chunk.len() == chunk_frames * FRAME_BYTES {
                let full =
                    std::mem::replace(&mut chunk, Vec::with_capacity(chunk_frames * FRAME_BYTES));
                match tx.try_send(full) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(c)) => {
                        AudioStats::add(&stats.capture_dropped_bytes, c.len() as u64);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
                }
            }
        }
        pace(started, frames_total);
    }
    // The part-filled last chunk goes to the daemon too, which counts it as unsent at stop:
    // every captured sample is accounted for.
    if !chunk.is_empty() {
        let _ = tx.try_send(chunk);
    }
    Ok(())
}

/// Sleeps while the device is more than `PACE_SLACK` ahead of real time (see `PACE_SLACK`).
fn pace(started: Instant, frames: u64) {
    let audio_time = Duration::from_micros(frames * 1_000_000 / INPUT_RATE_HZ as u64);
    let wall = started.elapsed();
    if audio_time > wall + PACE_SLACK {
        std::thread::sleep(audio_time - wall - PACE_SLACK / 2);
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}
