//! Wiring: starts the ALSA threads, keeps a Live session alive across connections, moves mic
//! chunks up and reply audio down, and lets `machine` decide what reaches the speaker.
//!
//! ```text
//!   capture thread ──mpsc(PcmChunk)──▶ ┌──────────────── Daemon::run ────────────────┐
//!                                      │ backlog (while no link is ready)             │ ──▶ link
//!                                      │ link      : the connection the mic goes to   │ ◀── frames
//!                                      │ dial      : a connection being set up (task) │
//!                                      │ draining  : the old link finishing a reply   │ ◀── frames
//!   playback thread ◀──PlaybackCmd──── │ machine.step(event) → actions                │
//!                                      └──────────────────────────────────────────────┘
//! ```
//!
//! A connection ends for one of three reasons, each with its own path:
//! - `goAway`, or the link reaching `max_connection_age_s`: a new connection is dialled at once
//!   (in its own task, so the receive loop keeps running) with the newest resumption handle;
//!   the mic switches over when it is ready; the old link keeps playing the current reply
//!   until that reply ends, then it is closed with 1000.
//! - the server closes or the network drops (or stays silent past `dead_after_s`): mic audio
//!   goes to the backlog, and the session is redialled with jittered backoff, forever.
//! - shutdown: the link is closed with 1000.
//!
//! Mic audio is never sent twice and never dropped while it fits the backlog: each chunk goes
//! to exactly one link, and a chunk whose send fails goes back to the front of the backlog.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::audio::playback::{self, PlaybackHandle};
use crate::audio::{capture, echo, AudioStats, PcmChunk, FRAME_BYTES, INPUT_RATE_HZ};
use crate::button::{Button, ButtonError, ButtonEvent, Edge, Led, Press, PressTracker};
use crate::config::{ApiKey, ButtonMode, Config, EchoMode, Wake};
use crate::lifecycle::{self, Lifecycle, LifecycleConfig};
use crate::live::policy::{Backoff, Failure, Resumption};
use crate::live::proto::ServerEvent;
use crate::live::proto::{
    write_audio_json, AutomaticActivityDetection, ClientMessage, ContextWindowCompression,
    FunctionResponse, RealtimeInputConfig, SessionResumptionConfig, Setup, SetupParams,
    SlidingWindow,
};
use crate::live::session::{self, Frame, SessionError};
use crate::live::transport::{Endpoint, LiveSocket};
use crate::machine::{Action, Input, Machine, State};
use crate::service::{error_chain, join_or_leave, notify, Hangups};
use crate::tools::{self, Effect};
use crate::video::capture::VideoStats;
use crate::video::Video;

/// What a run did: the continuity counters (mic audio captured, sent, dropped) and the
/// connection history. Logged when each connection ends and when the daemon stops.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub mic_bytes_sent: u64,
    pub mic_chunks_sent: u64,
    pub mic_bytes_dropped: u64,
    /// Mic bytes sent on connections that were then lost abruptly, after the server's last
    /// frame: they may or may not have arrived.
    pub mic_bytes_unconfirmed: u64,
    /// Mic bytes still waiting in the backlog when the daemon stopped (no session was ready).
    pub mic_bytes_unsent_at_stop: u64,
    /// Mic bytes captured while no session was open (wake = "button", idle): never sent.
    pub mic_bytes_idle: u64,
    pub reply_bytes_received: u64,
    pub late_bytes_dropped: u64,
    pub replies: u64,
    pub interruptions: u64,
    /// Connections whose setup completed.
    pub connections: u64,
    /// Connections that resumed the previous session with a handle.
    pub resumptions: u64,
    /// New connections after a lost one (not counting hand-overs).
    pub reconnects: u64,
    pub go_aways: u64,
    pub hand_overs: u64,
    pub tool_calls: u64,
    pub video_frames_captured: u64,
    pub video_frames_corrupt: u64,
    pub video_frames_sent: u64,
    pub malformed_frames: u64,
    /// WebSocket payload bytes sent and received.
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub echo_mode: EchoMode,
    /// Local barge-ins: the echo gate's detector fired.
    pub gate_openings: u64,
    /// The canceller's last delay and ERLE estimates.
    pub echo_delay_ms: Option<i64>,
    pub echo_erle_db: Option<f64>,
}

impl RunSummary {
    fn continuity(&self, stats: &AudioStats) -> String {
        let s = |b: u64| b / FRAME_BYTES as u64;
        format!(
            "samples captured {} / sent {} / dropped {} / unsent at stop {} (sent but unconfirmed before abrupt losses {})",
            s(AudioStats::get(&stats.captured_bytes)),
            s(self.mic_bytes_sent),
            s(self.mic_bytes_dropped + AudioStats::get(&stats.capture_dropped_bytes)),
            s(self.mic_bytes_unsent_at_stop),
            s(self.mic_bytes_unconfirmed)
        )
    }
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

/// The `setup` message: identical on every connection of a session except for the handle.
pub fn build_setup(cfg: &Config, handle: Option<&str>) -> ClientMessage {
    let mut setup = Setup::from(&setup_params(cfg));
    if cfg.live.resumption {
        setup.session_resumption = Some(SessionResumptionConfig {
            handle: handle.map(str::to_string),
            transparent: None,
        });
    }
    if cfg.live.compression_trigger_tokens > 0 {
        setup.context_window_compression = Some(ContextWindowCompression {
            trigger_tokens: Some(cfg.live.compression_trigger_tokens as i64),
            sliding_window: Some(SlidingWindow {
                target_tokens: Some(cfg.live.compression_target_tokens as i64),
            }),
        });
    }
    if cfg.live.tools {
        setup.tools = Some(tools::declarations());
    }
    if cfg.button.configured() && cfg.button.mode == ButtonMode::PushToTalk {
        // The button brackets each utterance (activityStart/End) instead of the server's VAD.
        setup.realtime_input_config = Some(RealtimeInputConfig {
            automatic_activity_detection: Some(AutomaticActivityDetection {
                disabled: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    ClientMessage::from(setup)
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
        self.trim();
    }

    /// A chunk whose send failed goes back where it came from: first in line.
    fn push_front(&mut self, c: PcmChunk) {
        self.bytes += c.len();
        self.chunks.push_front(c);
        self.trim();
    }

    fn trim(&mut self) {
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

    fn ms(&self) -> usize {
        self.bytes / FRAME_BYTES * 1000 / INPUT_RATE_HZ as usize
    }
}

/// One open, set-up connection.
struct Link {
    ws: LiveSocket,
    n: u64,
    opened: Instant,
    last_rx: Instant,
    up: u64,
    down: u64,
    /// Mic bytes sent since the last frame from the server: what an abrupt loss may have
    /// swallowed (TCP cannot say which of it arrived).
    unconfirmed: u64,
}

impl Link {
    /// Sends one message; a send that makes no progress for `limit` means a dead link (a full
    /// socket buffer on a vanished network would otherwise block the daemon for many minutes).
    async fn send(&mut self, msg: Message, limit: Duration) -> Result<u64, SessionError> {
        let len = msg.len() as u64;
        match tokio::time::timeout(limit, self.ws.send(msg)).await {
            Ok(Ok(())) => {
                self.up += len;
                Ok(len)
            }
            Ok(Err(e)) => Err(SessionError::Socket(e)),
            Err(_) => Err(SessionError::Stalled(limit)),
        }
    }
}

type DialResult = Result<(LiveSocket, Option<String>), SessionError>;

/// A connection being set up in its own task.
struct Dial {
    task: JoinHandle<DialResult>,
    resuming: bool,
    hand_over: bool,
}

struct Transcript {
    heard: String,
    said: String,
}

/// How a frame loop iteration ended for a link.
enum LinkEnd {
    Lost(SessionError),
    /// The model called `end_session`.
    Ended,
}

struct Daemon {
    cfg: Config,
    endpoint: Endpoint,
    key: ApiKey,
    player: PlaybackHandle,
    stats: Arc<AudioStats>,
    mic_rx: mpsc::Receiver<PcmChunk>,
    video: Option<Video>,
    machine: Machine,
    summary: RunSummary,
    backlog: Backlog,
    backoff: Backoff,
    resume: Resumption,
    link: Option<Link>,
    draining: Option<Link>,
    drain_until: Option<Instant>,
    dial: Option<Dial>,
    retry_at: Option<Instant>,
    links_opened: u64,
    transcript: Transcript,
    had_link: bool,
    /// READY=1 is sent once the microphone delivers audio.
    ready_sent: bool,
    /// Local barge-ins (echo gate openings) already acted on.
    gate_openings_seen: u64,
    /// Captured bytes at the last watchdog check.
    wd_captured: u64,
    life: Lifecycle,
    button: Option<Button>,
    press: PressTracker,
    led: Option<Led>,
    /// activityStart/End waiting for a connection (push-to-talk pressed while connecting).
    pending_activity: Option<ClientMessage>,
    /// Why the last attempt failed, for the displayed state (offline vs error).
    last_failure: Option<Failure>,
    /// The state last shown (log, STATUS=).
    shown: &'static str,
}

/// Runs until `shutdown` resolves. Device and network trouble is retried forever; only a
/// configuration the daemon cannot run with ends it early.
pub async fn run(
    cfg: Config,
    key: ApiKey,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<RunSummary> {
    let button_needed =
        cfg.session.wake == Wake::Button || cfg.button.mode == ButtonMode::PushToTalk;
    let button = if cfg.button.configured() {
        match Button::open(&cfg.button) {
            Ok(b) => Some(b),
            Err(e) if button_needed => {
                return Err(anyhow::Error::new(e).context("opening the button"));
            }
            Err(e) => {
                log::warn!("{}; continuing without the button", error_chain(&e));
                None
            }
        }
    } else {
        None
    };
    let led = cfg
        .button
        .led_line
        .as_deref()
        .and_then(|spec| match Led::open(spec) {
            Ok(l) => Some(l),
            Err(e) => {
                log::warn!("{}; continuing without the LED", error_chain(&e));
                None
            }
        });
    let endpoint = Endpoint::parse(&cfg.live.endpoint).context("[live] endpoint")?;
    let stats = Arc::new(AudioStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Two seconds of chunks between the capture thread and us; the backlog takes over offline.
    let depth = (2000 / cfg.audio.chunk_ms).max(4) as usize;
    let (mic_tx, mic_rx) = mpsc::channel::<PcmChunk>(depth);
    // The canceller's reference: exactly what the playback thread writes (replies, chimes).
    let (ref_tx, ref_rx) = match cfg.audio.echo {
        EchoMode::None => (None, None),
        EchoMode::Aec | EchoMode::HalfDuplex => {
            let (t, r) = echo::reference_channel();
            (Some(t), Some(r))
        }
    };
    let capture_thread = capture::spawn(
        capture::CaptureParams {
            device: cfg.audio.capture_device.clone(),
            chunk_ms: cfg.audio.chunk_ms,
            echo: echo::EchoSettings {
                mode: cfg.audio.echo,
                tail_s: f64::from(cfg.audio.echo_tail_ms) / 1000.0,
                render_rate_hz: crate::audio::OUTPUT_RATE_HZ,
            },
            reference: ref_rx,
        },
        mic_tx,
        stop.clone(),
        stats.clone(),
    )
    .context("starting the capture thread")?;
    let (player, playback_thread) = playback::spawn(
        cfg.audio.playback_device.clone(),
        cfg.audio.volume,
        stop.clone(),
        stats.clone(),
        ref_tx,
    )
    .context("starting the playback thread")?;
    let video = if cfg.video.enabled {
        Some(Video::start(&cfg.video, stop.clone()).context("starting the camera threads")?)
    } else {
        None
    };

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or(1);
    let cfg_wake_button = cfg.session.wake == Wake::Button;
    let cfg_ptt = cfg.button.configured() && cfg.button.mode == ButtonMode::PushToTalk;
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let cfg_idle = secs(cfg.session.idle_timeout_s);
    let cfg_max = secs(cfg.session.max_session_s);
    let cfg_chimes = cfg.session.chimes;
    let cfg_long_press = cfg.button.long_press_ms;
    let echo_mode = cfg.audio.echo;
    let mut d = Daemon {
        backlog: Backlog::new(cfg.audio.backlog_ms),
        backoff: Backoff::new(
            Duration::from_secs(cfg.live.reconnect_max_delay_s),
            Duration::from_secs(cfg.live.config_error_delay_s),
            seed,
        ),
        resume: Resumption::new(cfg.live.resumption),
        cfg,
        endpoint,
        key,
        player,
        stats: stats.clone(),
        mic_rx,
        video,
        machine: Machine::new(),
        summary: RunSummary {
            echo_mode,
            ..RunSummary::default()
        },
        link: None,
        draining: None,
        drain_until: None,
        dial: None,
        // The lifecycle decides when the first session opens (at start, or on a press).
        retry_at: None,
        links_opened: 0,
        transcript: Transcript {
            heard: String::new(),
            said: String::new(),
        },
        had_link: false,
        ready_sent: false,
        gate_openings_seen: 0,
        wd_captured: 0,
        life: Lifecycle::new(
            LifecycleConfig {
                wake_on_button: cfg_wake_button,
                push_to_talk: cfg_ptt,
                idle_timeout: cfg_idle,
                max_session: cfg_max,
                chimes: cfg_chimes,
            },
            Instant::now().into_std(),
        ),
        button,
        press: PressTracker::new(Duration::from_millis(u64::from(cfg_long_press))),
        led,
        pending_activity: None,
        last_failure: None,
        shown: "",
    };
    // READY=1 follows once the microphone delivers audio (see on_mic). Not "connected": a box
    // that boots without network must still start, and keep the mic buffered.
    notify::status("waiting for the microphone");
    let why = d.run(shutdown).await;
    log::debug!("stopping ({why})");

    stop.store(true, Ordering::Relaxed);
    let Daemon {
        mut summary,
        backlog,
        machine,
        player,
        mic_rx,
        video,
        ..
    } = d;
    drop(mic_rx);
    drop(player);
    join_or_leave(capture_thread, "capture");
    join_or_leave(playback_thread, "playback");
    if let Some(v) = video {
        summary.video_frames_captured = VideoStats::get(&v.stats.captured);
        summary.video_frames_corrupt = VideoStats::get(&v.stats.corrupt);
        v.join();
    }
    summary.mic_bytes_dropped = backlog.dropped_bytes;
    summary.mic_bytes_unsent_at_stop = backlog.bytes as u64;
    summary.replies = machine.replies;
    summary.interruptions = machine.interruptions;
    summary.gate_openings = AudioStats::get(&stats.echo.gate_openings);
    summary.echo_delay_ms = stats.echo.delay_ms();
    summary.echo_erle_db = stats.echo.measured_erle_db();
    log::info!(
        "stopped: {}; camera frames captured {} / sent {} / corrupt {}; {} connections ({} resumed, {} reconnects, {} goAways, {} hand-overs); {} replies, {} interruptions, {} late reply bytes discarded; played {} bytes; xruns capture {} / playback {}; bytes up {} / down {}",
        summary.continuity(&stats),
        summary.video_frames_captured,
        summary.video_frames_sent,
        summary.video_frames_corrupt,
        summary.connections,
        summary.resumptions,
        summary.reconnects,
        summary.go_aways,
        summary.hand_overs,
        summary.replies,
        summary.interruptions,
        summary.late_bytes_dropped,
        AudioStats::get(&stats.played_bytes),
        AudioStats::get(&stats.capture_xruns),
        AudioStats::get(&stats.playback_xruns),
        summary.bytes_up,
        summary.bytes_down,
    );
    if summary.echo_mode != EchoMode::None {
        log::info!("session {}", stats.echo.summary());
    }
    Ok(summary)
}

async fn next_frame(l: &mut Option<Link>) -> Option<Result<Message, tungstenite::Error>> {
    match l {
        Some(l) => l.ws.next().await,
        None => std::future::pending().await,
    }
}

async fn join_dial(d: &mut Option<Dial>) -> DialResult {
    match d {
        Some(d) => match (&mut d.task).await {
            Ok(r) => r,
            Err(e) => Err(SessionError::Closed {
                code: 1006,
                reason: format!("connection task failed: {e}"),
            }),
        },
        None => std::future::pending().await,
    }
}

async fn next_video(v: &mut Option<Video>) -> Option<Vec<u8>> {
    match v {
        Some(v) => v.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_button(b: &mut Option<Button>) -> Result<ButtonEvent, ButtonError> {
    match b {
        Some(b) => b.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    async fn run(&mut self, shutdown: impl Future<Output = &'static str>) -> &'static str {
        tokio::pin!(shutdown);
        let ping_every = Duration::from_secs(self.cfg.live.ping_interval_s);
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let max_age = Duration::from_secs(self.cfg.live.max_connection_age_s);
        // systemd's watchdog: fed at half its period, and only while healthy (on_watchdog).
        let wd_period = notify::watchdog_period();
        let mut wd_tick = tokio::time::interval(
            wd_period
                .map(|p| p / 2)
                .unwrap_or(Duration::from_secs(3600)),
        );
        wd_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangups = Hangups::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let acts = self
            .life
            .step(lifecycle::Event::Started, std::time::Instant::now(), false);
        self.apply(acts).await;
        self.update_state();
        loop {
            self.update_state();
            let can_dial = self.dial.is_none();
            let retry_at = if can_dial { self.retry_at } else { None };
            let age_deadline = match (&self.link, can_dial) {
                (Some(l), true) => Some(l.opened + max_age),
                _ => None,
            };
            let drain_until = self.drain_until;
            let long_due = match self.cfg.button.mode {
                ButtonMode::Toggle => self
                    .press
                    .long_press_due(std::time::Instant::now())
                    .map(Instant::from_std),
                ButtonMode::PushToTalk => None,
            };
            tokio::select! {
                // Order matters: a closed connection is noticed before more audio is sent
                // into it, and a stop request beats everything.
                biased;
                sig = &mut shutdown => {
                    log::info!("{sig}: closing the session");
                    notify::stopping();
                    self.close_all().await;
                    return sig;
                }
                r = next_frame(&mut self.link) => {
                    match self.on_frame(r, false).await {
                        Ok(()) => {}
                        Err(LinkEnd::Ended) => {
                            let acts = self.life.step(
                                lifecycle::Event::ModelEnded,
                                std::time::Instant::now(),
                                false,
                            );
                            self.apply(acts).await;
                        }
                        Err(LinkEnd::Lost(e)) => self.link_ended(e).await,
                    }
                }
                ev = next_button(&mut self.button) => self.on_button(ev).await,
                _ = sleep_opt(long_due) => {
                    if let Some(Press::Long) = self.press.poll_long(std::time::Instant::now()) {
                        self.life_event(lifecycle::Event::LongPress).await;
                    }
                }
                _ = tick.tick() => self.life_event(lifecycle::Event::Tick).await,
                r = next_frame(&mut self.draining) => {
                    if let Err(end) = self.on_frame(r, true).await {
                        log::debug!("old connection ended while draining: {}", match &end {
                            LinkEnd::Lost(e) => error_chain(e),
                            LinkEnd::Ended => "ended".into(),
                        });
                        self.finish_draining().await;
                    }
                }
                r = join_dial(&mut self.dial) => self.on_dialed(r).await,
                _ = sleep_opt(retry_at) => {
                    self.retry_at = None;
                    self.start_dial(false);
                }
                _ = sleep_opt(age_deadline) => {
                    log::info!("connection is {} s old; handing over to a new one before the server ends it", max_age.as_secs());
                    self.start_dial(true);
                }
                _ = sleep_opt(drain_until) => {
                    log::debug!("old connection did not finish its reply in time; closing it");
                    self.finish_draining().await;
                }
                _ = ping.tick() => self.on_ping().await,
                _ = wd_tick.tick(), if wd_period.is_some() => self.on_watchdog(),
                _ = hangups.recv() => self.reload().await,
                Some(jpeg) = next_video(&mut self.video) => self.on_video(jpeg).await,
                c = self.mic_rx.recv() => match c {
                    Some(c) => self.on_mic(c).await,
                    None => {
                        // The capture thread only stops on shutdown; wait for the signal.
                        let sig = (&mut shutdown).await;
                        self.close_all().await;
                        return sig;
                    }
                },
            }
        }
    }

    /// Dials a connection in its own task: the current link (if any) keeps working meanwhile.
    fn start_dial(&mut self, hand_over: bool) {
        if self.dial.is_some() {
            return;
        }
        let handle = self
            .resume
            .handle(std::time::Instant::now())
            .map(str::to_string);
        let resuming = handle.is_some();
        let setup = build_setup(&self.cfg, handle.as_deref());
        let endpoint = self.endpoint.clone();
        let key = self.key.clone();
        let timeout = Duration::from_millis(self.cfg.live.setup_timeout_ms);
        let attempt = self.backoff.attempts() + 1;
        log::info!(
            "connecting to {} ({}{}, attempt {attempt})",
            self.endpoint.host(),
            if resuming {
                "resuming the session"
            } else {
                "new session"
            },
            if hand_over { ", hand-over" } else { "" },
        );
        if self.link.is_none() {
            notify::status(&format!("connecting, attempt {attempt}"));
        }
        let task =
            tokio::spawn(async move { session::open(&endpoint, &key, &setup, timeout).await });
        self.dial = Some(Dial {
            task,
            resuming,
            hand_over,
        });
    }

    async fn on_dialed(&mut self, r: DialResult) {
        let Some(dial) = self.dial.take() else { return };
        match r {
            Ok((ws, session_id)) => {
                let now = Instant::now();
                self.links_opened += 1;
                self.summary.connections += 1;
                if dial.resuming {
                    self.summary.resumptions += 1;
                }
                if self.had_link && !dial.hand_over {
                    self.summary.reconnects += 1;
                }
                self.had_link = true;
                self.backoff.reset();
                log::info!(
                    "session ready on connection {}{}{}",
                    self.links_opened,
                    if dial.resuming {
                        " (resumed)"
                    } else {
                        " (new session)"
                    },
                    session_id
                        .map(|s| format!(", session {s}"))
                        .unwrap_or_default()
                );
                let new = Link {
                    ws,
                    n: self.links_opened,
                    opened: now,
                    last_rx: now,
                    up: 0,
                    down: 0,
                    unconfirmed: 0,
                };
                self.set_video_active(true);
                match self.link.replace(new) {
                    Some(old) => {
                        // Hand-over: the mic continues on the new link from this chunk on; the
                        // old one may still be delivering the current reply.
                        self.summary.hand_overs += 1;
                        self.finish_draining().await;
                        if self.machine.state() == State::Speaking {
                            self.draining = Some(old);
                            self.drain_until = Some(now + Duration::from_secs(10));
                        } else {
                            self.close_link(old, "handed over").await;
                        }
                    }
                    None => {
                        for a in self.machine.step(Input::SessionReady) {
                            perform(a, &self.player);
                        }
                    }
                }
                self.last_failure = None;
                if let Some(msg) = self.pending_activity.take() {
                    let limit = self.send_limit();
                    if let Some(link) = self.link.as_mut() {
                        if let Err(e) = Self::send_on(link, &mut self.summary, &msg, limit).await {
                            self.link_ended(e).await;
                            return;
                        }
                    }
                }
                if !self.backlog.chunks.is_empty() {
                    log::info!(
                        "sending {} ms of audio captured while no session was ready",
                        self.backlog.ms()
                    );
                }
                while let Some(c) = self.backlog.pop() {
                    if !self.send_mic(c).await {
                        break;
                    }
                }
            }
            Err(e) => {
                let kind = e.failure();
                self.last_failure = Some(kind);
                if dial.resuming && matches!(e, SessionError::Closed { .. }) {
                    // The server may refuse an expired or unknown handle: next time, start fresh.
                    log::warn!(
                        "resuming failed ({}); the next attempt starts a new session",
                        error_chain(&e)
                    );
                    self.resume.forget();
                }
                let delay = self.backoff.next_delay(kind);
                let attempt = self.backoff.attempts();
                let hint = match kind {
                    Failure::Config => {
                        " (a configuration problem: check [live] in the config file)"
                    }
                    Failure::Quota => " (quota or concurrent-session limit)",
                    Failure::Transient => "",
                };
                log::error!(
                    "connection attempt {attempt} failed: {}{hint}; retrying in {:.1} s",
                    error_chain(&e),
                    delay.as_secs_f64()
                );
                notify::status(&format!(
                    "reconnecting, attempt {attempt} failed, next in {:.0} s",
                    delay.as_secs_f64()
                ));
                self.retry_at = Some(Instant::now() + delay);
            }
        }
    }

    /// A processed camera frame: sent only on a ready link; never queued (it would be stale).
    async fn on_video(&mut self, jpeg: Vec<u8>) {
        let limit = self.send_limit();
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let msg = ClientMessage::video_jpeg(&jpeg);
        match link.send(Message::text(msg.to_json()), limit).await {
            Ok(len) => {
                self.summary.bytes_up += len;
                self.summary.video_frames_sent += 1;
                log::debug!("sent a {} byte camera frame", jpeg.len());
            }
            Err(e) => self.link_ended(e).await,
        }
    }

    /// A button edge: presses and holds become lifecycle events.
    async fn on_button(&mut self, ev: Result<ButtonEvent, ButtonError>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                log::error!(
                    "{}; the button is off until gemlive restarts",
                    error_chain(&e)
                );
                self.button = None;
                return;
            }
        };
        log::debug!("button {:?}", ev.edge);
        match self.cfg.button.mode {
            ButtonMode::PushToTalk => {
                let e = match ev.edge {
                    Edge::Pressed => lifecycle::Event::TalkDown,
                    Edge::Released => lifecycle::Event::TalkUp,
                };
                self.life_event(e).await;
            }
            ButtonMode::Toggle => match self.press.on_event(&ev) {
                Some(Press::Short) => self.life_event(lifecycle::Event::Press).await,
                Some(Press::Long) => self.life_event(lifecycle::Event::LongPress).await,
                None => {}
            },
        }
    }

    async fn life_event(&mut self, e: lifecycle::Event) {
        let speaking = self.machine.state() == State::Speaking;
        let acts = self.life.step(e, std::time::Instant::now(), speaking);
        self.apply(acts).await;
    }

    async fn apply(&mut self, acts: Vec<lifecycle::Action>) {
        use lifecycle::Action as A;
        for a in acts {
            match a {
                A::Open => {
                    log::info!("session starting");
                    self.backoff.reset();
                    self.last_failure = None;
                    if self.link.is_none() && self.dial.is_none() {
                        self.retry_at = Some(Instant::now());
                    }
                }
                A::Close(why) => self.end_session(why).await,
                A::Interrupt => {
                    log::info!("button: stopping the reply");
                    // The echo gate opens at once and sends what was said while it was shut.
                    self.stats
                        .echo
                        .open_request
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    self.step(Input::Interrupted);
                }
                A::ActivityStart | A::ActivityEnd => {
                    let msg = if a == A::ActivityStart {
                        ClientMessage::activity_start()
                    } else {
                        ClientMessage::activity_end()
                    };
                    let limit = self.send_limit();
                    match self.link.as_mut() {
                        Some(link) => {
                            if let Err(e) =
                                Self::send_on(link, &mut self.summary, &msg, limit).await
                            {
                                self.link_ended(e).await;
                            }
                        }
                        // Sent first thing once the connection is ready.
                        None => self.pending_activity = Some(msg),
                    }
                }
                A::Chime(k) => {
                    let g = self.machine.generation();
                    self.player.play(g, 24_000, lifecycle::chime_pcm(k));
                    self.player.end_of_turn(g);
                }
                A::Led(on) => {
                    if let Some(led) = &self.led {
                        if let Err(e) = led.set(on) {
                            log::warn!("LED: {}", error_chain(&e));
                        }
                    }
                }
            }
        }
    }

    /// Ends the conversation: close the connection with 1000, stop the speaker, forget the
    /// resumption handle (the next session is a new conversation), drop buffered mic audio.
    async fn end_session(&mut self, why: &str) {
        log::info!("session ended: {why}");
        if self.cfg.audio.echo != EchoMode::None {
            log::info!("session {}", self.stats.echo.summary());
        }
        if let Some(d) = self.dial.take() {
            d.task.abort();
        }
        self.retry_at = None;
        self.finish_draining().await;
        self.set_video_active(false);
        if let Some(link) = self.link.take() {
            self.close_link(link, why).await;
        }
        self.resume.forget();
        self.step(Input::Interrupted);
        self.step(Input::Disconnected);
        while self.backlog.pop().is_some() {}
        self.pending_activity = None;
        self.last_failure = None;
    }

    /// idle · connecting · listening · speaking · offline · error: logged and sent as STATUS=
    /// on every change.
    fn update_state(&mut self) {
        let s = if !self.life.active() {
            "idle"
        } else if self.link.is_some() {
            self.machine.state().as_str()
        } else {
            match self.last_failure {
                Some(Failure::Config | Failure::Quota) => "error",
                Some(Failure::Transient) => "offline",
                None => "connecting",
            }
        };
        if s != self.shown {
            self.shown = s;
            log::info!("state: {s}");
            notify::status(s);
        }
    }

    /// Feeds systemd's watchdog only while the daemon really works: the microphone delivered
    /// audio since the last check, and the connection (if any) has heard from the server
    /// recently. A stalled capture thread or a wedged session stops the pings, and systemd
    /// restarts us.
    fn on_watchdog(&mut self) {
        let captured = AudioStats::get(&self.stats.captured_bytes);
        let mic_ok = captured > self.wd_captured;
        self.wd_captured = captured;
        let dead_after = Duration::from_secs(self.cfg.live.dead_after_s);
        let link_ok = self
            .link
            .as_ref()
            .is_none_or(|l| l.last_rx.elapsed() <= dead_after);
        if mic_ok && link_ok {
            notify::watchdog();
        } else {
            log::warn!(
                "not feeding the watchdog: {}",
                if mic_ok {
                    "the connection has been silent too long"
                } else {
                    "no audio from the microphone since the last check"
                }
            );
        }
    }

    /// SIGHUP: re-read the file; keep the running config on any error. Session settings are
    /// applied by moving to a new connection that resumes the conversation; device settings
    /// need a restart and say so.
    async fn reload(&mut self) {
        notify::reloading();
        let path = self.cfg.path.clone();
        log::info!("SIGHUP: reloading {}", path.display());
        let new = match crate::config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                log::error!("config reload failed, keeping the running configuration: {e}");
                notify::ready(self.machine.state().as_str());
                return;
            }
        };
        let old = &self.cfg;
        let mut merged = new.clone();
        let mut needs_restart = Vec::new();
        if new.audio.capture_device != old.audio.capture_device
            || new.audio.playback_device != old.audio.playback_device
            || new.audio.chunk_ms != old.audio.chunk_ms
            || new.audio.echo != old.audio.echo
            || new.audio.echo_tail_ms != old.audio.echo_tail_ms
        {
            needs_restart.push("[audio] devices, chunk_ms and echo");
            merged.audio.capture_device = old.audio.capture_device.clone();
            merged.audio.playback_device = old.audio.playback_device.clone();
            merged.audio.chunk_ms = old.audio.chunk_ms;
            merged.audio.echo = old.audio.echo;
            merged.audio.echo_tail_ms = old.audio.echo_tail_ms;
        }
        if new.video != old.video {
            needs_restart.push("[video]");
            merged.video = old.video.clone();
        }
        if new.session.wake != old.session.wake {
            needs_restart.push("[session] wake");
            merged.session.wake = old.session.wake;
        }
        if new.live.ping_interval_s != old.live.ping_interval_s
            || new.live.max_connection_age_s != old.live.max_connection_age_s
        {
            needs_restart.push("ping_interval_s and max_connection_age_s");
            merged.live.ping_interval_s = old.live.ping_interval_s;
            merged.live.max_connection_age_s = old.live.max_connection_age_s;
        }
        let endpoint = match Endpoint::parse(&merged.live.endpoint) {
            Ok(e) => e,
            Err(e) => {
                log::error!("config reload failed, keeping the running configuration: {e}");
                notify::ready(self.machine.state().as_str());
                return;
            }
        };
        let session_changed = build_setup(&merged, None).to_json()
            != build_setup(old, None).to_json()
            || merged.live.endpoint != old.live.endpoint;
        crate::service::apply_config_level(merged.service.log_level.filter());
        if merged.audio.volume != old.audio.volume {
            self.player.set_volume(merged.audio.volume);
            log::info!("speaker volume set to {} %", merged.audio.volume);
        }
        self.backlog.max_bytes =
            (INPUT_RATE_HZ as usize * merged.audio.backlog_ms as usize / 1000) * FRAME_BYTES;
        self.resume.set_enabled(merged.live.resumption);
        self.endpoint = endpoint;
        self.cfg = merged;
        for what in needs_restart {
            log::warn!("{what} changed: restart gemlive to apply (systemctl restart gemlive)");
        }
        if session_changed && self.link.is_some() {
            log::info!("session settings changed: moving to a new connection that resumes the conversation");
            self.start_dial(true);
        }
        log::info!("configuration reloaded");
        notify::ready(self.machine.state().as_str());
    }

    async fn on_mic(&mut self, c: PcmChunk) {
        if !self.ready_sent {
            self.ready_sent = true;
            notify::ready(self.shown);
        }
        if !self.life.active() {
            // Idle: nothing leaves the box and nothing is kept.
            self.summary.mic_bytes_idle += c.len() as u64;
            return;
        }
        // The echo gate (capture thread) already replaced mic audio with silence while the
        // speaker plays and the canceller cannot be trusted. When its local barge-in detector
        // fires, the user clearly talks over the reply: stop it here, without waiting for the
        // server's `interrupted`.
        let openings = AudioStats::get(&self.stats.echo.gate_openings);
        if openings > self.gate_openings_seen {
            self.gate_openings_seen = openings;
            log::info!(
                "local barge-in: speaker stopped (monotonic {:.4} s)",
                crate::service::monotonic_s()
            );
            self.step(Input::LocalBargeIn);
        }
        if is_speech(&c) {
            if let Some(v) = &self.video {
                v.gate.speech();
            }
            self.life_event(lifecycle::Event::Activity).await;
        }
        if self.link.is_some() && self.backlog.chunks.is_empty() {
            self.send_mic(c).await;
        } else {
            self.backlog.push(c);
        }
    }

    fn send_limit(&self) -> Duration {
        Duration::from_secs(self.cfg.live.dead_after_s)
    }

    /// Sends one chunk on the link; on failure it goes back to the backlog, the link is
    /// dropped, and false is returned.
    async fn send_mic(&mut self, c: PcmChunk) -> bool {
        let limit = self.send_limit();
        let Some(link) = self.link.as_mut() else {
            self.backlog.push_front(c);
            return false;
        };
        // base64 is 4/3 of the bytes, plus the fixed envelope.
        let mut json = String::with_capacity(c.len() * 4 / 3 + 96);
        write_audio_json(&mut json, &c, INPUT_RATE_HZ);
        match link.send(Message::text(json), limit).await {
            Ok(len) => {
                link.unconfirmed += c.len() as u64;
                self.summary.bytes_up += len;
                self.summary.mic_bytes_sent += c.len() as u64;
                self.summary.mic_chunks_sent += 1;
                true
            }
            Err(e) => {
                self.backlog.push_front(c);
                self.link_ended(e).await;
                false
            }
        }
    }

    async fn send_on(
        link: &mut Link,
        summary: &mut RunSummary,
        msg: &ClientMessage,
        limit: Duration,
    ) -> Result<(), SessionError> {
        summary.bytes_up += link.send(Message::text(msg.to_json()), limit).await?;
        Ok(())
    }

    async fn on_ping(&mut self) {
        let limit = self.send_limit();
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let silent = link.last_rx.elapsed();
        if silent > limit {
            let e = SessionError::Closed {
                code: 1006,
                reason: format!(
                    "no frame (not even a pong) from the server for {} s (dead_after_s)",
                    silent.as_secs()
                ),
            };
            self.link_ended(e).await;
            return;
        }
        match link.send(Message::Ping(Vec::new().into()), limit).await {
            Ok(len) => self.summary.bytes_up += len,
            Err(e) => self.link_ended(e).await,
        }
    }

    /// Handles one frame from the link (or the draining link). `Err` = this link is over.
    async fn on_frame(
        &mut self,
        r: Option<Result<Message, tungstenite::Error>>,
        draining: bool,
    ) -> Result<(), LinkEnd> {
        let Some(r) = r else {
            return Err(LinkEnd::Lost(SessionError::Closed {
                code: 1006,
                reason: "connection dropped without a close frame".into(),
            }));
        };
        let msg = r.map_err(|e| LinkEnd::Lost(SessionError::Socket(e)))?;
        let len = msg.len() as u64;
        {
            let link = if draining {
                self.draining.as_mut()
            } else {
                self.link.as_mut()
            };
            if let Some(l) = link {
                l.last_rx = Instant::now();
                l.down += len;
                l.unconfirmed = 0;
            }
        }
        self.summary.bytes_down += len;
        let max = self.cfg.live.max_message_kb as usize * 1024;
        match session::decode(msg, max) {
            Frame::Server(m) => {
                let mut reply_over = false;
                let events = m.into_events();
                if events.is_empty() {
                    log::debug!(
                        "skipping a server message of unknown type (or with nothing to act on)"
                    );
                }
                for ev in events {
                    if matches!(
                        ev,
                        ServerEvent::TurnComplete
                            | ServerEvent::GenerationComplete
                            | ServerEvent::Interrupted
                    ) {
                        reply_over = true;
                    }
                    if let Some(end) = self.on_event(ev, draining).await {
                        return Err(end);
                    }
                }
                if draining && reply_over {
                    return Err(LinkEnd::Ended);
                }
            }
            Frame::Malformed(e) => {
                self.summary.malformed_frames += 1;
                log::warn!("skipping a malformed server frame: {e}");
            }
            Frame::Closed { code, reason } => {
                return Err(LinkEnd::Lost(SessionError::Closed { code, reason }));
            }
            Frame::Control => {}
        }
        Ok(())
    }

    async fn on_event(&mut self, ev: ServerEvent, draining: bool) -> Option<LinkEnd> {
        match ev {
            ServerEvent::Audio { rate_hz, pcm } => {
                self.summary.reply_bytes_received += pcm.len() as u64;
                let _ = self
                    .life
                    .step(lifecycle::Event::Activity, std::time::Instant::now(), true);
                self.flush_heard();
                let len = pcm.len();
                let mut pcm = Some(pcm);
                for a in self.machine.step(Input::ModelAudio) {
                    match a {
                        Action::Play { gen } => {
                            if let Some(p) = pcm.take() {
                                if !self.player.play(gen, rate_hz, p) {
                                    log::warn!("playback queue full: reply audio dropped");
                                }
                            }
                        }
                        Action::DropLate => {
                            self.summary.late_bytes_dropped += len as u64;
                            log::debug!("dropped {len} bytes of a cancelled reply");
                        }
                        other => perform(other, &self.player),
                    }
                }
            }
            ServerEvent::Interrupted => {
                log::info!(
                    "interrupted by the user: speaker stopped (monotonic {:.4} s)",
                    crate::service::monotonic_s()
                );
                self.step(Input::Interrupted);
            }
            ServerEvent::GenerationComplete => self.step(Input::GenerationComplete),
            ServerEvent::TurnComplete => {
                self.flush_heard();
                if !self.transcript.said.is_empty() {
                    log::info!(role = "model"; "replied: {}", self.transcript.said.trim());
                    self.transcript.said.clear();
                }
                self.step(Input::TurnComplete);
            }
            ServerEvent::InputTranscription(t) => self.transcript.heard.push_str(&t),
            ServerEvent::OutputTranscription(t) => self.transcript.said.push_str(&t),
            ServerEvent::Text(t) => log::info!("model text: {t}"),
            ServerEvent::SetupComplete { .. } => log::debug!("unexpected second setupComplete"),
            ServerEvent::ToolCall(calls) => return self.on_tool_calls(calls, draining).await,
            ServerEvent::ToolCallCancellation(ids) => {
                // Built-in tools act at once; there is nothing left to undo.
                log::info!("the server cancelled tool call(s) {ids:?}");
            }
            ServerEvent::GoAway { time_left } => {
                self.summary.go_aways += 1;
                log::info!(
                    "goAway: the server ends this connection in {:.1} s; handing over to a new one now",
                    time_left.as_secs_f64()
                );
                if !draining {
                    self.start_dial(true);
                }
            }
            ServerEvent::ResumptionUpdate { handle, resumable } => {
                log::debug!("session resumption update (resumable: {resumable})");
                self.resume
                    .update(handle, resumable, std::time::Instant::now());
            }
            ServerEvent::Usage(u) => log::debug!("usage: {u:?}"),
        }
        None
    }

    async fn on_tool_calls(
        &mut self,
        calls: Vec<crate::live::proto::FunctionCall>,
        draining: bool,
    ) -> Option<LinkEnd> {
        let mut responses: Vec<FunctionResponse> = Vec::with_capacity(calls.len());
        let mut effects = Vec::new();
        for call in &calls {
            self.summary.tool_calls += 1;
            let (resp, effect) = tools::answer(call);
            log::info!(
                "tool call {}({}) -> {}",
                call.name,
                call.args,
                resp.response
            );
            responses.push(resp);
            effects.extend(effect);
        }
        let link = if draining {
            self.draining.as_mut()
        } else {
            self.link.as_mut()
        };
        if let Some(link) = link {
            let msg = ClientMessage::tool_response(responses);
            let limit = Duration::from_secs(self.cfg.live.dead_after_s);
            if let Err(e) = Self::send_on(link, &mut self.summary, &msg, limit).await {
                return Some(LinkEnd::Lost(e));
            }
        }
        let mut end = None;
        for e in effects {
            match e {
                Effect::SetVolume(p) => {
                    self.player.set_volume(p);
                    log::info!("speaker volume set to {p} %");
                }
                Effect::EndSession => end = Some(LinkEnd::Ended),
            }
        }
        end
    }

    fn set_video_active(&self, on: bool) {
        if let Some(v) = &self.video {
            v.gate.set_active(on);
        }
    }

    fn flush_heard(&mut self) {
        if !self.transcript.heard.is_empty() {
            log::info!(role = "user"; "heard: {}", self.transcript.heard.trim());
            self.transcript.heard.clear();
        }
    }

    fn step(&mut self, input: Input) {
        for a in self.machine.step(input) {
            perform(a, &self.player);
        }
    }

    /// The current link is over: log its counters, then redial (now, or after a backoff).
    async fn link_ended(&mut self, e: SessionError) {
        let Some(link) = self.link.take() else { return };
        self.set_video_active(false);
        let kind = e.failure();
        self.last_failure = Some(kind);
        // A connection that worked is redialled at once; only repeated failures wait.
        let delay = match kind {
            Failure::Transient => Duration::ZERO,
            _ => self.backoff.next_delay(kind),
        };
        if link.unconfirmed > 0 {
            self.summary.mic_bytes_unconfirmed += link.unconfirmed;
            log::warn!(
                "up to {} ms of mic audio sent since the server's last frame may not have arrived",
                link.unconfirmed / FRAME_BYTES as u64 * 1000 / u64::from(INPUT_RATE_HZ)
            );
        }
        log::warn!(
            "connection {} lost after {:.0} s: {}; {}",
            link.n,
            link.opened.elapsed().as_secs_f64(),
            error_chain(&e),
            if delay.is_zero() {
                "reconnecting now".to_string()
            } else {
                format!("reconnecting in {:.1} s", delay.as_secs_f64())
            }
        );
        self.log_link_counters(&link);
        for a in self.machine.step(Input::Disconnected) {
            perform(a, &self.player);
        }
        if self.dial.is_none() && self.life.active() {
            self.retry_at = Some(Instant::now() + delay);
        }
    }

    fn log_link_counters(&mut self, link: &Link) {
        self.summary.mic_bytes_dropped = self.backlog.dropped_bytes;
        log::info!(
            "connection {} ended after {:.1} s (bytes up {} / down {}); so far: {}; {} reconnects, {} resumptions, {} goAways, {} interruptions",
            link.n,
            link.opened.elapsed().as_secs_f64(),
            link.up,
            link.down,
            self.summary.continuity(&self.stats),
            self.summary.reconnects,
            self.summary.resumptions,
            self.summary.go_aways,
            self.machine.interruptions,
        );
    }

    async fn close_link(&mut self, mut link: Link, why: &str) {
        log::debug!("closing connection {} ({why})", link.n);
        self.log_link_counters(&link);
        session::close(&mut link.ws).await;
    }

    async fn finish_draining(&mut self) {
        self.drain_until = None;
        if let Some(old) = self.draining.take() {
            self.close_link(old, "reply finished after hand-over").await;
            self.step(Input::ReplyConnectionClosed);
        }
    }

    async fn close_all(&mut self) {
        if let Some(d) = self.dial.take() {
            d.task.abort();
        }
        self.finish_draining().await;
        self.set_video_active(false);
        if let Some(link) = self.link.take() {
            self.close_link(link, "shutdown").await;
        }
    }
}

/// Loud enough to be someone talking (RMS over ~-38 dBFS), for `send = "while_speaking"`.
fn is_speech(pcm: &[u8]) -> bool {
    crate::audio::rms_s16le(pcm) > 400.0
}

fn perform(a: Action, player: &PlaybackHandle) {
    match a {
        Action::Discard { new_gen } => player.discard(new_gen),
        Action::EndOfTurn { gen } => player.end_of_turn(gen),
        // Shown by Daemon::update_state, which also knows idle/offline/error.
        Action::State(_) => {}
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
        b.push_front(vec![9; 1000]);
        assert_eq!(b.pop().map(|c| c[0]), Some(9));
    }

    #[test]
    fn setup_is_identical_but_for_the_handle() {
        let cfg = Config::with_defaults("/x.toml");
        let a: serde_json::Value =
            serde_json::from_str(&build_setup(&cfg, None).to_json()).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(&build_setup(&cfg, Some("h-1")).to_json()).unwrap();
        assert_eq!(a["setup"]["sessionResumption"], serde_json::json!({}));
        assert_eq!(
            b["setup"]["sessionResumption"],
            serde_json::json!({"handle": "h-1"})
        );
        assert_eq!(
            a["setup"]["contextWindowCompression"],
            serde_json::json!({"triggerTokens": 25600, "slidingWindow": {"targetTokens": 12800}})
        );
        let mut b2 = b.clone();
        b2["setup"]["sessionResumption"] = serde_json::json!({});
        assert_eq!(a, b2);
        assert!(a["setup"]["tools"][0]["functionDeclarations"].is_array());
    }
}
