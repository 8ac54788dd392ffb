//! Wiring: starts the ALSA threads, keeps a Live session open, moves mic chunks up and reply
//! audio down, and lets `machine` decide what reaches the speaker.
//!
//! ```text
//!   capture thread ──mpsc(PcmChunk)──▶ ┌──────────── run() ─────────────┐ ──text──▶ WebSocket
//!                                      │ backlog (10 s, while offline)   │
//!   playback thread ◀──PlaybackCmd──── │ machine.step(event) → actions   │ ◀─frames── WebSocket
//!                                      └─────────────────────────────────┘
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::audio::playback::{self, PlaybackHandle};
use crate::audio::{capture, AudioStats, PcmChunk, FRAME_BYTES, INPUT_RATE_HZ};
use crate::config::{ApiKey, Config, Wake};
use crate::live::proto::{write_audio_json, ClientMessage, ServerEvent, SetupParams};
use crate::live::session::{self, Frame, SessionError};
use crate::live::transport::{Endpoint, LiveSocket};
use crate::machine::{Action, Input, Machine, State};
use crate::service::{error_chain, notify};

/// Mic audio kept while no session is ready (connecting, reconnecting); oldest dropped beyond.
const BACKLOG_MS: u32 = 10_000;

/// What a run did, for the final log line and for tests.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub mic_bytes_sent: u64,
    pub mic_chunks_sent: u64,
    pub mic_bytes_dropped: u64,
    pub reply_bytes_received: u64,
    pub late_bytes_dropped: u64,
    pub replies: u64,
    pub interruptions: u64,
    pub connections: u64,
    pub malformed_frames: u64,
}

pub fn setup_params(cfg: &Config) -> SetupParams {
    let si = cfg.live.system_instruction.trim();
    SetupParams {
        model: cfg.live.model.clone(),
        voice: cfg.live.voice.clone(),
        system_instruction: (!si.is_empty()).then(|| si.to_string()),
        media_resolution: cfg.live.media_resolution.wire_name().to_string(),
        input_transcription: cfg.live.input_transcription,
        output_transcription: cfg.live.output_transcription,
    }
}

/// Mic chunks waiting for a session, bounded by time; overflow drops the oldest and counts it.
struct Backlog {
    chunks: VecDeque<PcmChunk>,
    bytes: usize,
    max_bytes: usize,
    dropped_bytes: u64,
}

impl Backlog {
    fn new(ms: u32) -> Self {
        Backlog {
            chunks: VecDeque::new(),
            bytes: 0,
            max_bytes: (INPUT_RATE_HZ as usize * ms as usize / 1000) * FRAME_BYTES,
            dropped_bytes: 0,
        }
    }

    fn push(&mut self, c: PcmChunk) {
        self.bytes += c.len();
        self.chunks.push_back(c);
        while self.bytes > self.max_bytes {
            let Some(old) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            self.dropped_bytes += old.len() as u64;
        }
    }

    fn pop(&mut self) -> Option<PcmChunk> {
        let c = self.chunks.pop_front()?;
        self.bytes -= c.len();
        Some(c)
    }
}

/// Reconnect delay: 0.5 s doubling to 30 s, with ±20 % jitter; configuration errors wait a
/// minute so a wrong model name does not hammer the API.
fn reconnect_delay(attempt: u32, config_error: bool) -> Duration {
    if config_error {
        return Duration::from_secs(60);
    }
    let base = (500u64 << attempt.min(6)).min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = (nanos % 400) as i64 - 200; // per mille of base, ±20 %
    Duration::from_millis((base as i64 + base as i64 * jitter / 1000).max(100) as u64)
}

struct Transcript {
    heard: String,
    said: String,
}

/// Runs until `shutdown` resolves. Device and network trouble is retried; only a broken
/// configuration ends it early.
pub async fn run(
    cfg: Config,
    key: ApiKey,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<RunSummary> {
    if cfg.session.wake == Wake::Button {
        bail!("wake = \"button\" needs the GPIO button support, which this version does not have yet; set wake = \"always\" in [session]");
    }
    let endpoint = Endpoint::parse(&cfg.live.endpoint).context("[live] endpoint")?;
    let setup = ClientMessage::setup(&setup_params(&cfg));
    let setup_timeout = Duration::from_millis(cfg.live.setup_timeout_ms);

    let stats = Arc::new(AudioStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Two seconds of chunks between the capture thread and us; the backlog takes over offline.
    let depth = (2000 / cfg.audio.chunk_ms).max(4) as usize;
    let (mic_tx, mut mic_rx) = mpsc::channel::<PcmChunk>(depth);
    let capture_thread = capture::spawn(
        capture::CaptureParams {
            device: cfg.audio.capture_device.clone(),
            chunk_ms: cfg.audio.chunk_ms,
        },
        mic_tx,
        stop.clone(),
        stats.clone(),
    )
    .context("starting the capture thread")?;
    let (player, playback_thread) = playback::spawn(
        cfg.audio.playback_device.clone(),
        stop.clone(),
        stats.clone(),
    )
    .context("starting the playback thread")?;

    let mut machine = Machine::new();
    let mut summary = RunSummary::default();
    let mut backlog = Backlog::new(BACKLOG_MS);
    let mut attempt: u32 = 0;
    tokio::pin!(shutdown);
    // Ready = config valid and audio threads running. Not "connected": a box that boots without
    // network must still start (and keep the mic buffered) rather than fail its start job.
    notify::ready("connecting");

    let why = 'outer: loop {
        notify::status(&format!("connecting to {}", endpoint.host()));
        log::info!(
            "connecting to {} (model {})",
            endpoint.host(),
            cfg.live.model
        );
        // Keep capturing into the backlog while the connection is set up: the first words after
        // start-up must not be lost to the handshake.
        let opened = {
            let open = session::open(&endpoint, &key, &setup, setup_timeout);
            tokio::pin!(open);
            loop {
                tokio::select! {
                    r = &mut open => break r,
                    Some(c) = mic_rx.recv() => backlog.push(c),
                    sig = &mut shutdown => break 'outer sig,
                }
            }
        };
        let mut ws = match opened {
            Ok((ws, session_id)) => {
                attempt = 0;
                summary.connections += 1;
                log::info!(
                    "session ready{}",
                    session_id
                        .map(|s| format!(" (session {s})"))
                        .unwrap_or_default()
                );
                ws
            }
            Err(e) => {
                let delay = reconnect_delay(attempt, e.is_config_error());
                attempt = attempt.saturating_add(1);
                log::error!(
                    "connection attempt {attempt} failed: {}; retrying in {:.1} s",
                    error_chain(&e),
                    delay.as_secs_f64()
                );
                notify::status(&format!("reconnecting, attempt {attempt}"));
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => continue 'outer,
                        Some(c) = mic_rx.recv() => backlog.push(c),
                        sig = &mut shutdown => break 'outer sig,
                    }
                }
            }
        };
        for a in machine.step(Input::SessionReady) {
            perform(a, &player);
        }
        if !backlog.chunks.is_empty() {
            log::info!(
                "sending {} ms of audio captured while connecting",
                backlog.bytes / FRAME_BYTES * 1000 / INPUT_RATE_HZ as usize
            );
        }
        let mut transcript = Transcript {
            heard: String::new(),
            said: String::new(),
        };
        let ended: Result<(), SessionError> = async {
            while let Some(c) = backlog.pop() {
                send_audio(&mut ws, &c, &mut summary).await?;
            }
            loop {
                tokio::select! {
                    Some(c) = mic_rx.recv() => send_audio(&mut ws, &c, &mut summary).await?,
                    msg = ws.next() => {
                        let Some(msg) = msg else {
                            return Err(SessionError::Closed { code: 1006, reason: String::new() });
                        };
                        match session::decode(msg.map_err(SessionError::Socket)?) {
                            Frame::Server(m) => {
                                for ev in m.into_events() {
                                    on_event(ev, &mut machine, &player, &mut summary, &mut transcript);
                                }
                            }
                            Frame::Malformed(e) => {
                                summary.malformed_frames += 1;
                                log::warn!("skipping a malformed server frame: {e}");
                            }
                            Frame::Closed { code, reason } => {
                                return Err(SessionError::Closed { code, reason });
                            }
                            Frame::Control => {}
                        }
                    }
                    sig = &mut shutdown => {
                        log::info!("{sig}: closing the session");
                        notify::stopping();
                        session::close(&mut ws).await;
                        return Ok(());
                    }
                }
            }
        }
        .await;
        match ended {
            Ok(()) => break "signal",
            Err(e) => {
                log::warn!("session ended: {}; reconnecting", error_chain(&e));
                for a in machine.step(Input::Disconnected) {
                    perform(a, &player);
                }
            }
        }
    };
    log::debug!("stopping ({why})");
    stop.store(true, Ordering::Relaxed);
    drop(mic_rx);
    drop(player);
    let _ = capture_thread.join();
    let _ = playback_thread.join();

    summary.mic_bytes_dropped =
        backlog.dropped_bytes + AudioStats::get(&stats.capture_dropped_bytes);
    summary.replies = machine.replies;
    summary.interruptions = machine.interruptions;
    log::info!(
        "stopped: sent {} bytes of mic audio in {} chunks ({} dropped), received {} bytes of reply audio in {} replies, {} interruptions, {} late bytes discarded, played {} bytes, xruns capture {} / playback {}",
        summary.mic_bytes_sent,
        summary.mic_chunks_sent,
        summary.mic_bytes_dropped,
        summary.reply_bytes_received,
        summary.replies,
        summary.interruptions,
        summary.late_bytes_dropped,
        AudioStats::get(&stats.played_bytes),
        AudioStats::get(&stats.capture_xruns),
        AudioStats::get(&stats.playback_xruns),
    );
    Ok(summary)
}

async fn send_audio(
    ws: &mut LiveSocket,
    pcm: &[u8],
    summary: &mut RunSummary,
) -> Result<(), SessionError> {
    // base64 is 4/3 of the bytes, plus the fixed envelope.
    let mut json = String::with_capacity(pcm.len() * 4 / 3 + 96);
    write_audio_json(&mut json, pcm, INPUT_RATE_HZ);
    ws.send(Message::text(json))
        .await
        .map_err(SessionError::Socket)?;
    summary.mic_bytes_sent += pcm.len() as u64;
    summary.mic_chunks_sent += 1;
    Ok(())
}

fn on_event(
    ev: ServerEvent,
    machine: &mut Machine,
    player: &PlaybackHandle,
    summary: &mut RunSummary,
    transcript: &mut Transcript,
) {
    match ev {
        ServerEvent::Audio { rate_hz, pcm } => {
            summary.reply_bytes_received += pcm.len() as u64;
            if !transcript.heard.is_empty() {
                log::info!("heard: {}", transcript.heard.trim());
                transcript.heard.clear();
            }
            let len = pcm.len();
            let mut pcm = Some(pcm);
            for a in machine.step(Input::ModelAudio) {
                match a {
                    Action::Play { gen } => {
                        if let Some(p) = pcm.take() {
                            if !player.play(gen, rate_hz, p) {
                                log::warn!("playback queue full: reply audio dropped");
                            }
                        }
                    }
                    Action::DropLate => {
                        summary.late_bytes_dropped += len as u64;
                        log::debug!("dropped {len} bytes of a cancelled reply");
                    }
                    other => perform(other, player),
                }
            }
        }
        ServerEvent::Interrupted => {
            log::info!("interrupted by the user: speaker stopped");
            step(machine, Input::Interrupted, player);
        }
        ServerEvent::GenerationComplete => {
            step(machine, Input::GenerationComplete, player);
        }
        ServerEvent::TurnComplete => {
            if !transcript.heard.is_empty() {
                log::info!("heard: {}", transcript.heard.trim());
                transcript.heard.clear();
            }
            if !transcript.said.is_empty() {
                log::info!("replied: {}", transcript.said.trim());
                transcript.said.clear();
            }
            step(machine, Input::TurnComplete, player);
        }
        ServerEvent::InputTranscription(t) => transcript.heard.push_str(&t),
        ServerEvent::OutputTranscription(t) => transcript.said.push_str(&t),
        ServerEvent::Text(t) => log::info!("model text: {t}"),
        ServerEvent::SetupComplete { .. } => log::debug!("unexpected second setupComplete"),
        ServerEvent::ToolCall(calls) => {
            log::warn!(
                "the model asked for {} tool call(s), but no tools are configured",
                calls.len()
            );
        }
        ServerEvent::ToolCallCancellation(ids) => log::debug!("tool calls cancelled: {ids:?}"),
        ServerEvent::GoAway { time_left } => log::warn!(
            "the server will close this connection in {:.1} s; the session will reconnect",
            time_left.as_secs_f64()
        ),
        ServerEvent::ResumptionUpdate { resumable, .. } => {
            log::debug!("session resumption update (resumable: {resumable})");
        }
        ServerEvent::Usage(u) => log::debug!("usage: {u:?}"),
    }
}

fn step(machine: &mut Machine, input: Input, player: &PlaybackHandle) {
    for a in machine.step(input) {
        perform(a, player);
    }
}

fn perform(a: Action, player: &PlaybackHandle) {
    match a {
        Action::Discard { new_gen } => player.discard(new_gen),
        Action::EndOfTurn { gen } => player.end_of_turn(gen),
        Action::State(s) => {
            log::info!("state: {}", s.as_str());
            if s != State::Connecting {
                notify::status(s.as_str());
            }
        }
        // Audio-carrying actions are handled where the audio is (on_event).
        Action::Play { .. } | Action::DropLate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_drops_oldest_and_counts() {
        let mut b = Backlog::new(100); // 100 ms = 3200 bytes
        for i in 0..5u8 {
            b.push(vec![i; 1000]);
        }
        assert_eq!(b.dropped_bytes, 2000);
        assert_eq!(b.pop().map(|c| c[0]), Some(2));
        assert_eq!(b.bytes, 2000);
    }

    #[test]
    fn reconnect_delays() {
        for a in 0..10 {
            let d = reconnect_delay(a, false);
            assert!(
                d >= Duration::from_millis(400) && d <= Duration::from_secs(36),
                "{d:?}"
            );
        }
        assert!(reconnect_delay(20, false) >= Duration::from_secs(24));
        assert_eq!(reconnect_delay(0, true), Duration::from_secs(60));
    }
}
