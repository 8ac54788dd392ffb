//! The session supervisor, pure: which connection the mic goes to, when to dial, resume, hand
//! over, back off, declare a link dead, and which mic audio to send again. It takes inputs
//! (mic chunks, frames seen, socket progress, dial results, user actions, ticks) with `now`
//! passed in and returns [`Effect`]s; the daemon performs them. No sockets, no clock, no
//! files, so every rule is unit-tested in milliseconds.
//!
//! ```text
//!   Open ──▶ dial ──Dialed ok──▶ link ──goAway / max age / reload──▶ dial (hand-over)
//!             ▲  └─Dialed err─▶ backoff ─┘   │                         └─ok─▶ old link drains its reply
//!             └──── retry ◀── lost (closed, silent for dead_after, TCP stall for stall_after)
//! ```
//!
//! Mic audio is never sent twice and never dropped while it fits the backlog. Every message
//! handed to a connection has a sequence number; the connection reports which of them the
//! server's TCP stack acknowledged. When a link is lost abruptly, the audio it never had
//! acknowledged goes back to the front of the backlog, in order, and is sent on the next
//! connection. A link that is handed over or closed politely keeps what it was given: its
//! close frame follows that audio on a working socket.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::policy::{Backoff, Failure, Resumption};

/// One connection, dialled or open. Never reused within a run.
pub type ConnId = u64;

/// Mic audio: 16 kHz S16_LE mono.
const BYTES_PER_SECOND: u64 = 32_000;

fn ms_of(bytes: u64) -> u64 {
    bytes * 1000 / BYTES_PER_SECOND
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub ping_every: Duration,
    /// No frame at all from the server for this long: dead.
    pub dead_after: Duration,
    /// Written bytes unacknowledged, with no acknowledgement progress, for this long: dead.
    pub stall_after: Duration,
    /// Hand over to a new connection once the current one is this old.
    pub max_age: Duration,
    /// A dial (connect, TLS, upgrade, setup) that has not completed after this long failed.
    pub setup_timeout: Duration,
    /// How long an old connection may keep playing its reply after a hand-over.
    pub drain_limit: Duration,
    /// Mic audio kept while no link takes it, bytes.
    pub backlog_bytes: usize,
    /// Messages handed to one connection and not yet acknowledged; more waits in the backlog
    /// (mic) or is skipped (camera frames, which would be stale).
    pub max_in_flight: usize,
    pub resumption: bool,
    pub backoff_max: Duration,
    pub config_error_delay: Duration,
    pub seed: u32,
}

/// What the daemon asks of the supervisor, and what it saw on its connections.
#[derive(Debug)]
pub enum Input {
    /// The lifecycle opened a session: connect and keep connected.
    Open,
    /// The lifecycle ended the session: close, forget the handle, drop buffered mic audio.
    Close(&'static str),
    /// The daemon is stopping: close politely, keep nothing.
    Shutdown,
    /// Mic audio captured while the session is open.
    Mic(Vec<u8>),
    /// A camera frame, already encoded as its JSON message.
    Video(String),
    /// activityStart/activityEnd (push-to-talk), as JSON: sent now or first thing once ready.
    Activity(String),
    /// A message about now (as JSON): a note for the model (`realtimeInput.text`, a timer
    /// ended) or a frame it asked for (`look`). Sent on a ready link whatever is in flight,
    /// dropped without one (it would be stale later).
    Note(String),
    /// A tool response for a call that came on `conn`.
    ToolResponse {
        conn: ConnId,
        json: String,
    },
    /// Session settings changed (reload): move to a new connection that resumes.
    SettingsChanged,
    /// A dial finished: setupComplete arrived (with the session id, if any), or it failed.
    Dialed {
        conn: ConnId,
        result: Result<Option<String>, DialFailure>,
        /// The model's reply is playing right now (an old link drains it after a hand-over).
        speaking: bool,
    },
    /// Any frame arrived on `conn` (pongs included).
    Received {
        conn: ConnId,
    },
    GoAway {
        conn: ConnId,
    },
    Resumption {
        handle: Option<String>,
        resumable: bool,
    },
    /// The current reply ended (turnComplete, generationComplete or interrupted) on `conn`.
    ReplyOver {
        conn: ConnId,
    },
    /// The connection ended: the server closed it, or the socket failed.
    Lost {
        conn: ConnId,
        failure: Failure,
        why: String,
    },
    /// What the kernel says about the connection's socket: every message up to and including
    /// `acked_through` was acknowledged by the server's TCP stack; `acked_bytes` is the stream
    /// offset acknowledged so far and `unacked_bytes` what was written but not acknowledged.
    Progress {
        conn: ConnId,
        acked_through: Option<u64>,
        acked_bytes: u64,
        unacked_bytes: u64,
    },
    /// Time passed: check the deadlines.
    Tick,
}

#[derive(Debug, Clone)]
pub struct DialFailure {
    pub failure: Failure,
    pub why: String,
    /// The server closed the WebSocket (as opposed to a network or TLS error): a refused
    /// resumption handle looks like this.
    pub closed_by_server: bool,
}

/// What goes on the wire, in order, on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Audio(Vec<u8>),
    Json(String),
    Ping,
}

/// Reply-machine inputs the supervisor decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineInput {
    SessionReady,
    Disconnected,
    /// The old connection of a hand-over is closed: its reply is over.
    ReplyConnectionClosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open connection `conn` and send the setup (with this handle, if any).
    Dial {
        conn: ConnId,
        handle: Option<String>,
        hand_over: bool,
    },
    /// Hand `msg` to connection `conn`'s writer; `seq` comes back in `Progress`.
    Send {
        conn: ConnId,
        seq: u64,
        msg: Outgoing,
    },
    /// Close with 1000 after what was handed over before.
    Close {
        conn: ConnId,
    },
    /// Drop the connection now (dead or no longer wanted): nothing more is written to it.
    Abort {
        conn: ConnId,
    },
    Machine(MachineInput),
    /// Camera frames flow only while a link is ready.
    VideoActive(bool),
    /// Keep this resumption handle across a restart (`None`: forget the kept one).
    SaveHandle(Option<String>),
}

/// The supervisor's continuity and connection counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Mic bytes handed to a connection the first time.
    pub mic_bytes_sent: u64,
    pub mic_chunks_sent: u64,
    /// Mic bytes sent again on a new connection because the lost one never had them
    /// acknowledged.
    pub mic_bytes_resent: u64,
    /// Mic bytes the server's TCP stack acknowledged.
    pub mic_bytes_acked: u64,
    /// Mic bytes the backlog had to drop (oldest first) because it was full.
    pub mic_bytes_dropped: u64,
    /// Mic bytes on connections lost abruptly that the kernel could not account for (no
    /// acknowledgement information): they may or may not have arrived.
    pub mic_bytes_unconfirmed: u64,
    pub video_frames_sent: u64,
    pub connections: u64,
    pub resumptions: u64,
    pub reconnects: u64,
    pub go_aways: u64,
    pub hand_overs: u64,
}

/// The connection side of the displayed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Idle,
    Connecting,
    Ready,
    Offline,
    Error,
}

/// Which of our connections a frame came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Current,
    Draining,
    /// Dialling, closed, or unknown: its frames are ignored.
    Other,
}

#[derive(Debug)]
struct InFlight {
    seq: u64,
    /// Mic audio (resent if never acknowledged); `None` for everything else.
    audio: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Open {
    id: ConnId,
    opened: Instant,
    last_rx: Instant,
    last_ping: Instant,
    in_flight: VecDeque<InFlight>,
    acked_bytes: u64,
    unacked_bytes: u64,
    /// The last time the acknowledged offset moved, or nothing was outstanding.
    last_progress: Instant,
    /// Whether the connection ever reported socket progress (a platform without TCP_INFO
    /// never does: then only the silent-server rule applies).
    progress_known: bool,
    /// A hand-over for age was started from this link (once).
    aged: bool,
}

impl Open {
    fn new(id: ConnId, now: Instant) -> Self {
        Open {
            id,
            opened: now,
            last_rx: now,
            last_ping: now,
            in_flight: VecDeque::new(),
            acked_bytes: 0,
            unacked_bytes: 0,
            last_progress: now,
            progress_known: false,
            aged: false,
        }
    }
}

#[derive(Debug)]
struct Dialing {
    id: ConnId,
    started: Instant,
    resuming: bool,
    hand_over: bool,
}

#[derive(Debug)]
struct Draining {
    link: Open,
    until: Instant,
}

/// Mic chunks waiting for a link, bounded in bytes; overflow drops the oldest and counts it.
#[derive(Debug, Default)]
struct Backlog {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    max_bytes: usize,
}

impl Backlog {
    fn push_back(&mut self, c: Vec<u8>) -> u64 {
        self.bytes += c.len();
        self.chunks.push_back(c);
        self.trim()
    }

    /// Audio older than everything queued (unacknowledged on a lost link) goes first.
    fn push_front(&mut self, c: Vec<u8>) -> u64 {
        self.bytes += c.len();
        self.chunks.push_front(c);
        self.trim()
    }

    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.bytes > self.max_bytes {
            let Some(old) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= old.len();
            dropped += old.len() as u64;
        }
        dropped
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.pop_front()?;
        self.bytes -= c.len();
        Some(c)
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.bytes = 0;
    }
}

#[derive(Debug)]
pub struct Supervisor {
    s: Settings,
    active: bool,
    link: Option<Open>,
    draining: Option<Draining>,
    dial: Option<Dialing>,
    /// The settings changed after the dial in flight sent its setup: once it is up, another
    /// hand-over follows with the new ones.
    stale_dial: bool,
    retry_at: Option<Instant>,
    next_conn: ConnId,
    next_seq: u64,
    backlog: Backlog,
    /// Chunks waiting in the backlog that were sent before (counted as resent when they go).
    resend_bytes: u64,
    backoff: Backoff,
    resume: Resumption,
    pending_activity: Option<String>,
    last_failure: Option<Failure>,
    had_link: bool,
    pub counters: Counters,
}

impl Supervisor {
    pub fn new(s: Settings) -> Self {
        Supervisor {
            backoff: Backoff::new(s.backoff_max, s.config_error_delay, s.seed),
            resume: Resumption::new(s.resumption),
            backlog: Backlog {
                max_bytes: s.backlog_bytes,
                ..Backlog::default()
            },
            s,
            active: false,
            link: None,
            draining: None,
            dial: None,
            stale_dial: false,
            retry_at: None,
            next_conn: 1,
            next_seq: 1,
            resend_bytes: 0,
            pending_activity: None,
            last_failure: None,
            had_link: false,
            counters: Counters::default(),
        }
    }

    /// A handle kept from before a restart, `age` old.
    pub fn restore_handle(&mut self, handle: String, age: Duration, now: Instant) {
        self.resume.restore(handle, age, now);
    }

    /// The settings a reload may change while running.
    pub fn set_backlog_bytes(&mut self, bytes: usize) {
        self.backlog.max_bytes = bytes;
        self.counters.mic_bytes_dropped += self.backlog.trim();
    }

    pub fn set_resumption(&mut self, on: bool) {
        self.resume.set_enabled(on);
    }

    pub fn role(&self, conn: ConnId) -> Role {
        if self.link.as_ref().is_some_and(|l| l.id == conn) {
            Role::Current
        } else if self.draining.as_ref().is_some_and(|d| d.link.id == conn) {
            Role::Draining
        } else {
            Role::Other
        }
    }

    pub fn link_state(&self) -> Link {
        if !self.active {
            Link::Idle
        } else if self.link.is_some() {
            Link::Ready
        } else {
            match self.last_failure {
                Some(Failure::Config | Failure::Quota) => Link::Error,
                Some(Failure::Transient) => Link::Offline,
                None => Link::Connecting,
            }
        }
    }

    /// Mic audio waiting for a link.
    pub fn backlog_bytes(&self) -> u64 {
        self.backlog.bytes as u64
    }

    /// The earliest time a `Tick` can change anything (for the daemon's timer).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if self.dial.is_none() {
            if let Some(r) = self.retry_at {
                at(r);
            }
        }
        if let Some(d) = &self.dial {
            at(d.started + self.s.setup_timeout);
        }
        if let Some(l) = &self.link {
            at(l.last_ping + self.s.ping_every);
            at(l.last_rx + self.s.dead_after);
            if l.unacked_bytes > 0 {
                at(l.last_progress + self.s.stall_after);
            }
            if !l.aged && self.dial.is_none() {
                at(l.opened + self.s.max_age);
            }
        }
        if let Some(d) = &self.draining {
            at(d.until);
        }
        t
    }

    pub fn step(&mut self, input: Input, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Open => {
                self.active = true;
                self.backoff.reset();
                self.last_failure = None;
                if self.link.is_none() && self.dial.is_none() {
                    self.retry_at = Some(now);
                }
            }
            Input::Close(why) => self.close(why, &mut out),
            Input::Shutdown => {
                self.active = false;
                self.close_connections("shutdown", &mut out);
            }
            Input::Mic(c) => self.on_mic(c, &mut out),
            Input::Video(json) => {
                if let Some(l) = self.link.as_mut() {
                    if l.in_flight.len() < self.s.max_in_flight {
                        self.counters.video_frames_sent += 1;
                        Self::send(&mut self.next_seq, l, Outgoing::Json(json), None, &mut out);
                    }
                }
            }
            Input::Note(json) => {
                if let Some(l) = self.link.as_mut() {
                    Self::send(&mut self.next_seq, l, Outgoing::Json(json), None, &mut out);
                }
            }
            Input::Activity(json) => match self.link.as_mut() {
                Some(l) => Self::send(&mut self.next_seq, l, Outgoing::Json(json), None, &mut out),
                None => self.pending_activity = Some(json),
            },
            Input::ToolResponse { conn, json } => {
                let l = match self.role(conn) {
                    Role::Current => self.link.as_mut(),
                    Role::Draining => self.draining.as_mut().map(|d| &mut d.link),
                    Role::Other => None,
                };
                match l {
                    Some(l) => {
                        Self::send(&mut self.next_seq, l, Outgoing::Json(json), None, &mut out)
                    }
                    None => log::warn!(
                        "a tool response for connection {conn} is dropped: that connection is gone"
                    ),
                }
            }
            Input::SettingsChanged => {
                if self.dial.is_some() {
                    self.stale_dial = true;
                } else if self.link.is_some() {
                    log::info!("session settings changed: moving to a new connection that resumes the conversation");
                    self.start_dial(true, now, &mut out);
                }
            }
            Input::Dialed {
                conn,
                result,
                speaking,
            } => self.on_dialed(conn, result, speaking, now, &mut out),
            Input::Received { conn } => {
                if let Some(l) = self.link.as_mut().filter(|l| l.id == conn) {
                    l.last_rx = now;
                }
            }
            Input::GoAway { conn } => {
                if self.role(conn) == Role::Current {
                    self.counters.go_aways += 1;
                    log::info!("goAway: handing over to a new connection now");
                    self.start_dial(true, now, &mut out);
                }
            }
            Input::Resumption { handle, resumable } => {
                let before = self.resume.latest().map(|(h, _)| h.to_string());
                self.resume.update(handle, resumable, now);
                let after = self.resume.latest().map(|(h, _)| h.to_string());
                if after.is_some() && after != before && self.s.resumption {
                    out.push(Effect::SaveHandle(after));
                }
            }
            Input::ReplyOver { conn } => {
                if self.role(conn) == Role::Draining {
                    self.finish_draining("its reply finished", &mut out);
                }
            }
            Input::Lost { conn, failure, why } => match self.role(conn) {
                Role::Current => self.link_lost(failure, &why, true, now, &mut out),
                Role::Draining => {
                    log::debug!("old connection {conn} ended while draining: {why}");
                    if let Some(d) = self.draining.take() {
                        out.push(Effect::Abort { conn: d.link.id });
                        out.push(Effect::Machine(MachineInput::ReplyConnectionClosed));
                    }
                }
                Role::Other => {}
            },
            Input::Progress {
                conn,
                acked_through,
                acked_bytes,
                unacked_bytes,
            } => self.on_progress(
                conn,
                acked_through,
                acked_bytes,
                unacked_bytes,
                now,
                &mut out,
            ),
            Input::Tick => self.on_tick(now, &mut out),
        }
        out
    }

    fn send(
        next_seq: &mut u64,
        l: &mut Open,
        msg: Outgoing,
        audio: Option<Vec<u8>>,
        out: &mut Vec<Effect>,
    ) {
        let seq = *next_seq;
        *next_seq += 1;
        l.in_flight.push_back(InFlight { seq, audio });
        out.push(Effect::Send {
            conn: l.id,
            seq,
            msg,
        });
    }

    fn on_mic(&mut self, c: Vec<u8>, out: &mut Vec<Effect>) {
        self.counters.mic_bytes_dropped += self.backlog.push_back(c);
        self.flush_backlog(out);
    }

    /// Moves backlog audio to the link while it takes more.
    fn flush_backlog(&mut self, out: &mut Vec<Effect>) {
        let Some(l) = self.link.as_mut() else { return };
        while l.in_flight.len() < self.s.max_in_flight {
            let Some(c) = self.backlog.pop() else { break };
            let n = c.len() as u64;
            if self.resend_bytes > 0 {
                let again = n.min(self.resend_bytes);
                self.resend_bytes -= again;
                self.counters.mic_bytes_resent += again;
            } else {
                self.counters.mic_bytes_sent += n;
                self.counters.mic_chunks_sent += 1;
            }
            Self::send(
                &mut self.next_seq,
                l,
                Outgoing::Audio(c.clone()),
                Some(c),
                out,
            );
        }
    }

    fn on_progress(
        &mut self,
        conn: ConnId,
        acked_through: Option<u64>,
        acked_bytes: u64,
        unacked_bytes: u64,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let (l, current) = match self.role(conn) {
            Role::Current => (self.link.as_mut(), true),
            Role::Draining => (self.draining.as_mut().map(|d| &mut d.link), false),
            Role::Other => (None, false),
        };
        let Some(l) = l else { return };
        l.progress_known = true;
        if acked_bytes > l.acked_bytes || unacked_bytes == 0 {
            l.last_progress = now;
        }
        l.acked_bytes = l.acked_bytes.max(acked_bytes);
        l.unacked_bytes = unacked_bytes;
        if let Some(through) = acked_through {
            while l.in_flight.front().is_some_and(|f| f.seq <= through) {
                if let Some(InFlight { audio: Some(a), .. }) = l.in_flight.pop_front() {
                    self.counters.mic_bytes_acked += a.len() as u64;
                }
            }
        }
        if current {
            self.flush_backlog(out);
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if let Some(d) = &self.dial {
            if now >= d.started + self.s.setup_timeout {
                let conn = d.id;
                out.push(Effect::Abort { conn });
                let why = format!(
                    "no setupComplete within {:?} (setup_timeout_ms)",
                    self.s.setup_timeout
                );
                self.on_dialed(
                    conn,
                    Err(DialFailure {
                        failure: Failure::Transient,
                        why,
                        closed_by_server: false,
                    }),
                    false,
                    now,
                    out,
                );
            }
        }
        if self.draining.as_ref().is_some_and(|d| now >= d.until) {
            log::debug!("old connection did not finish its reply in time; closing it");
            self.finish_draining("the reply took too long", out);
        }
        if let Some(l) = self.link.as_mut() {
            if now >= l.last_rx + self.s.dead_after {
                let why = format!(
                    "no frame (not even a pong) from the server for {} s (dead_after_s)",
                    now.duration_since(l.last_rx).as_secs()
                );
                self.link_lost(Failure::Transient, &why, false, now, out);
            } else if l.unacked_bytes > 0 && now >= l.last_progress + self.s.stall_after {
                let why = format!(
                    "{} bytes written but not acknowledged by the server for {:.1} s (stall_after_s): the network is gone",
                    l.unacked_bytes,
                    now.duration_since(l.last_progress).as_secs_f64()
                );
                self.link_lost(Failure::Transient, &why, false, now, out);
            } else {
                if now >= l.last_ping + self.s.ping_every {
                    l.last_ping = now;
                    Self::send(&mut self.next_seq, l, Outgoing::Ping, None, out);
                }
                if !l.aged && self.dial.is_none() && now >= l.opened + self.s.max_age {
                    l.aged = true;
                    log::info!(
                        "connection is {} s old; handing over to a new one before the server ends it",
                        self.s.max_age.as_secs()
                    );
                    self.start_dial(true, now, out);
                }
            }
        }
        if self.dial.is_none() && self.retry_at.is_some_and(|r| now >= r) {
            self.retry_at = None;
            if self.active && self.link.is_none() {
                self.start_dial(false, now, out);
            }
        }
    }

    fn start_dial(&mut self, hand_over: bool, now: Instant, out: &mut Vec<Effect>) {
        if self.dial.is_some() {
            return;
        }
        let handle = self.resume.handle(now).map(str::to_string);
        let conn = self.next_conn;
        self.next_conn += 1;
        let attempt = self.backoff.attempts() + 1;
        log::info!(
            "connecting ({}{}, attempt {attempt})",
            if handle.is_some() {
                "resuming the session"
            } else {
                "new session"
            },
            if hand_over { ", hand-over" } else { "" },
        );
        self.dial = Some(Dialing {
            id: conn,
            started: now,
            resuming: handle.is_some(),
            hand_over,
        });
        out.push(Effect::Dial {
            conn,
            handle,
            hand_over,
        });
    }

    fn on_dialed(
        &mut self,
        conn: ConnId,
        result: Result<Option<String>, DialFailure>,
        speaking: bool,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let Some(dial) = self.dial.take_if(|d| d.id == conn) else {
            // A dial that was abandoned (timed out, session ended) finished after all.
            if result.is_ok() {
                out.push(Effect::Abort { conn });
            }
            return;
        };
        // A failed dial's retry is set up afresh; a successful one hands over again below.
        let stale = std::mem::take(&mut self.stale_dial);
        match result {
            Ok(session_id) => {
                self.counters.connections += 1;
                if dial.resuming {
                    self.counters.resumptions += 1;
                }
                if self.had_link && !dial.hand_over {
                    self.counters.reconnects += 1;
                }
                self.had_link = true;
                self.backoff.reset();
                self.last_failure = None;
                log::info!(
                    "session ready on connection {conn}{}{}",
                    if dial.resuming {
                        " (resumed)"
                    } else {
                        " (new session)"
                    },
                    session_id
                        .map(|s| format!(", session {s}"))
                        .unwrap_or_default()
                );
                out.push(Effect::VideoActive(true));
                match self.link.replace(Open::new(conn, now)) {
                    Some(old) => {
                        // Hand-over: the mic continues on the new link from here on; the old
                        // one may still be delivering the current reply.
                        self.counters.hand_overs += 1;
                        self.finish_draining("a newer hand-over", out);
                        if speaking {
                            self.draining = Some(Draining {
                                link: old,
                                until: now + self.s.drain_limit,
                            });
                        } else {
                            log::debug!("closing connection {} (handed over)", old.id);
                            out.push(Effect::Close { conn: old.id });
                        }
                    }
                    None => out.push(Effect::Machine(MachineInput::SessionReady)),
                }
                if let (Some(json), Some(l)) = (self.pending_activity.take(), self.link.as_mut()) {
                    Self::send(&mut self.next_seq, l, Outgoing::Json(json), None, out);
                }
                if self.backlog.bytes > 0 {
                    log::info!(
                        "sending {} ms of audio captured while no session was ready{}",
                        ms_of(self.backlog.bytes as u64),
                        if self.resend_bytes > 0 {
                            format!(
                                " ({} ms of it not acknowledged by the lost connection)",
                                ms_of(self.resend_bytes)
                            )
                        } else {
                            String::new()
                        }
                    );
                }
                self.flush_backlog(out);
                if stale {
                    log::info!("session settings changed while connecting: moving to a new connection that resumes the conversation");
                    self.start_dial(true, now, out);
                }
            }
            Err(e) => {
                self.last_failure = Some(e.failure);
                if dial.resuming && e.closed_by_server {
                    // The server may refuse an expired or unknown handle: next time, start fresh.
                    log::warn!(
                        "resuming failed ({}); the next attempt starts a new session",
                        e.why
                    );
                    self.resume.forget();
                    out.push(Effect::SaveHandle(None));
                }
                let delay = self.backoff.next_delay(e.failure);
                let attempt = self.backoff.attempts();
                let hint = match e.failure {
                    Failure::Config => {
                        " (a configuration problem: check [live] in the config file)"
                    }
                    Failure::Quota => " (quota or concurrent-session limit)",
                    Failure::Transient => "",
                };
                log::error!(
                    "connection attempt {attempt} failed: {}{hint}; retrying in {:.1} s",
                    e.why,
                    delay.as_secs_f64()
                );
                if self.active {
                    self.retry_at = Some(now + delay);
                }
            }
        }
    }

    /// The current link is over: its unacknowledged mic audio goes back to the backlog, and
    /// the session is redialled (now, or after a backoff).
    fn link_lost(
        &mut self,
        failure: Failure,
        why: &str,
        reported: bool,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let Some(mut l) = self.link.take() else {
            return;
        };
        out.push(Effect::Abort { conn: l.id });
        out.push(Effect::VideoActive(false));
        self.last_failure = Some(failure);
        // A connection that worked is redialled at once; only repeated failures wait.
        let delay = match failure {
            Failure::Transient => Duration::ZERO,
            _ => self.backoff.next_delay(failure),
        };
        let mut again = 0u64;
        let mut again_chunks = Vec::new();
        while let Some(f) = l.in_flight.pop_back() {
            if let Some(a) = f.audio {
                again += a.len() as u64;
                again_chunks.push(a);
            }
        }
        if again > 0 && !l.progress_known {
            // Without acknowledgement information nothing can be proven lost or delivered:
            // send nothing twice, and say what may be missing.
            self.counters.mic_bytes_unconfirmed += again;
            log::warn!(
                "up to {} ms of mic audio sent on the lost connection may not have arrived",
                ms_of(again)
            );
        } else if again > 0 {
            // Newest first came out of the ring above; push_front restores the order.
            for c in again_chunks {
                self.counters.mic_bytes_dropped += self.backlog.push_front(c);
            }
            self.resend_bytes = (self.resend_bytes + again).min(self.backlog.bytes as u64);
            log::warn!(
                "{} ms of mic audio the server never acknowledged will be sent again on the next connection",
                ms_of(again)
            );
        }
        log::warn!(
            "connection {} {} after {:.0} s: {why}; {}",
            l.id,
            if reported { "lost" } else { "declared dead" },
            now.duration_since(l.opened).as_secs_f64(),
            if delay.is_zero() {
                "reconnecting now".to_string()
            } else {
                format!("reconnecting in {:.1} s", delay.as_secs_f64())
            }
        );
        out.push(Effect::Machine(MachineInput::Disconnected));
        if self.active {
            self.retry_at = Some(now + delay);
            if delay.is_zero() && self.dial.is_none() {
                self.retry_at = None;
                self.start_dial(false, now, out);
            }
        }
    }

    fn finish_draining(&mut self, why: &str, out: &mut Vec<Effect>) {
        if let Some(d) = self.draining.take() {
            log::debug!("closing connection {} ({why})", d.link.id);
            out.push(Effect::Close { conn: d.link.id });
            out.push(Effect::Machine(MachineInput::ReplyConnectionClosed));
        }
    }

    fn close_connections(&mut self, why: &'static str, out: &mut Vec<Effect>) {
        if let Some(d) = self.dial.take() {
            out.push(Effect::Abort { conn: d.id });
        }
        self.retry_at = None;
        self.finish_draining(why, out);
        if let Some(l) = self.link.take() {
            log::debug!("closing connection {} ({why})", l.id);
            out.push(Effect::VideoActive(false));
            out.push(Effect::Close { conn: l.id });
        }
    }

    /// Ends the conversation: close with 1000, forget the resumption handle (the next session
    /// is a new conversation), drop buffered mic audio.
    fn close(&mut self, why: &'static str, out: &mut Vec<Effect>) {
        self.active = false;
        self.close_connections(why, out);
        self.resume.forget();
        out.push(Effect::SaveHandle(None));
        out.push(Effect::Machine(MachineInput::Disconnected));
        self.backlog.clear();
        self.resend_bytes = 0;
        self.pending_activity = None;
        self.last_failure = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 1280; // 40 ms

    fn settings() -> Settings {
        Settings {
            ping_every: Duration::from_secs(15),
            dead_after: Duration::from_secs(45),
            stall_after: Duration::from_secs(5),
            max_age: Duration::from_secs(540),
            setup_timeout: Duration::from_secs(10),
            drain_limit: Duration::from_secs(10),
            backlog_bytes: 10 * 32_000,
            max_in_flight: 256,
            resumption: true,
            backoff_max: Duration::from_secs(30),
            config_error_delay: Duration::from_secs(60),
            seed: 7,
        }
    }

    /// A supervisor, a virtual clock, and a record of what was sent where.
    struct Rig {
        sv: Supervisor,
        t0: Instant,
        now: Instant,
        /// (conn, seq, mic chunk tag) for every audio Send.
        audio: Vec<(ConnId, u64, u8)>,
        sent: Vec<(ConnId, u64, Outgoing)>,
        dials: Vec<(ConnId, Option<String>, bool)>,
        closed: Vec<ConnId>,
        aborted: Vec<ConnId>,
        machine: Vec<MachineInput>,
        saved: Vec<Option<String>>,
        next_tag: u8,
    }

    impl Rig {
        fn new(s: Settings) -> Self {
            let t0 = Instant::now();
            Rig {
                sv: Supervisor::new(s),
                t0,
                now: t0,
                audio: vec![],
                sent: vec![],
                dials: vec![],
                closed: vec![],
                aborted: vec![],
                machine: vec![],
                saved: vec![],
                next_tag: 0,
            }
        }

        fn at_ms(&self) -> u128 {
            self.now.duration_since(self.t0).as_millis()
        }

        fn step(&mut self, i: Input) -> Vec<Effect> {
            let fx = self.sv.step(i, self.now);
            for e in &fx {
                match e {
                    Effect::Send { conn, seq, msg } => {
                        if let Outgoing::Audio(a) = msg {
                            self.audio.push((*conn, *seq, a[0]));
                        }
                        self.sent.push((*conn, *seq, msg.clone()));
                    }
                    Effect::Dial {
                        conn,
                        handle,
                        hand_over,
                    } => self.dials.push((*conn, handle.clone(), *hand_over)),
                    Effect::Close { conn } => self.closed.push(*conn),
                    Effect::Abort { conn } => self.aborted.push(*conn),
                    Effect::Machine(m) => self.machine.push(*m),
                    Effect::SaveHandle(h) => self.saved.push(h.clone()),
                    Effect::VideoActive(_) => {}
                }
            }
            fx
        }

        /// Advances the clock in 10 ms ticks (the daemon ticks at its next deadline or sooner).
        fn advance(&mut self, d: Duration) {
            let end = self.now + d;
            while self.now < end {
                self.now = (self.now + Duration::from_millis(10)).min(end);
                self.step(Input::Tick);
            }
        }

        /// One 40 ms mic chunk tagged with a running number, then 40 ms pass.
        fn mic(&mut self) -> u8 {
            let tag = self.next_tag;
            self.next_tag = self.next_tag.wrapping_add(1);
            self.step(Input::Mic(vec![tag; CHUNK]));
            self.advance(Duration::from_millis(40));
            tag
        }

        fn last_dial(&self) -> ConnId {
            self.dials.last().expect("a dial").0
        }

        fn ready(&mut self, conn: ConnId, speaking: bool) {
            self.step(Input::Dialed {
                conn,
                result: Ok(Some("s-1".into())),
                speaking,
            });
        }

        /// Opens a session and completes the first dial.
        fn connected() -> Self {
            let mut r = Rig::new(settings());
            r.step(Input::Open);
            r.step(Input::Tick);
            let c = r.last_dial();
            r.ready(c, false);
            r
        }

        /// The kernel acknowledged everything sent on `conn` so far.
        fn ack_all(&mut self, conn: ConnId) {
            let through = self.sent.iter().filter(|s| s.0 == conn).map(|s| s.1).max();
            self.step(Input::Progress {
                conn,
                acked_through: through,
                acked_bytes: through.unwrap_or(0) * 2000,
                unacked_bytes: 0,
            });
        }

        fn tags_on(&self, conn: ConnId) -> Vec<u8> {
            self.audio
                .iter()
                .filter(|a| a.0 == conn)
                .map(|a| a.2)
                .collect()
        }
    }

    #[test]
    fn opens_dials_and_sends_mic_in_order() {
        let mut r = Rig::new(settings());
        r.mic(); // not open: nothing is sent, and the chunk waits
        assert!(r.dials.is_empty());
        r.step(Input::Open);
        r.step(Input::Tick);
        assert_eq!(r.dials, vec![(1, None, false)]);
        assert_eq!(r.sv.link_state(), Link::Connecting);
        r.mic();
        r.ready(1, false);
        assert_eq!(r.machine, vec![MachineInput::SessionReady]);
        assert_eq!(r.sv.link_state(), Link::Ready);
        r.mic();
        assert_eq!(r.tags_on(1), vec![0, 1, 2]);
        assert_eq!(r.sv.counters.mic_bytes_sent, 3 * CHUNK as u64);
    }

    #[test]
    fn settings_that_change_while_connecting_bring_a_hand_over_once_connected() {
        let mut r = Rig::new(settings());
        r.step(Input::Open);
        r.step(Input::Tick);
        r.step(Input::SettingsChanged); // the first dial's setup is already out
        assert_eq!(r.dials.len(), 1);
        r.ready(1, false);
        assert_eq!(
            r.dials.last(),
            Some(&(2, None, true)),
            "a hand-over follows"
        );
        r.step(Input::SettingsChanged); // again while that one connects: one more after it
        r.ready(2, false);
        assert_eq!(r.dials.len(), 3);
        r.ready(3, false);
        assert_eq!(r.dials.len(), 3, "settled");
        // A failed dial is retried with the new settings anyway: no extra hand-over.
        r.step(Input::SettingsChanged);
        assert_eq!(r.dials.len(), 4);
        r.step(Input::SettingsChanged);
        r.step(Input::Dialed {
            conn: 4,
            result: Err(DialFailure {
                failure: Failure::Transient,
                why: "refused".into(),
                closed_by_server: false,
            }),
            speaking: false,
        });
        r.advance(Duration::from_secs(5));
        let c = r.last_dial();
        r.ready(c, false);
        assert_eq!(r.last_dial(), c, "no hand-over after a retried dial");
    }

    #[test]
    fn go_away_hands_over_with_the_newest_handle_and_the_old_link_drains_its_reply() {
        let mut r = Rig::connected();
        r.step(Input::Resumption {
            handle: Some("h-1".into()),
            resumable: true,
        });
        r.step(Input::Resumption {
            handle: None,
            resumable: false,
        });
        assert_eq!(r.saved, vec![Some("h-1".into())]);
        r.mic();
        r.step(Input::GoAway { conn: 1 });
        assert_eq!(r.dials.last(), Some(&(2, Some("h-1".into()), true)));
        r.mic(); // still on the old link while the new one is set up
        r.ready(2, true);
        assert_eq!(r.sv.role(1), Role::Draining);
        let m = r.mic();
        assert_eq!(r.tags_on(1), vec![0, 1]);
        assert_eq!(r.tags_on(2), vec![m]);
        // The reply finishes on the old link: it is closed with 1000.
        r.step(Input::ReplyOver { conn: 1 });
        assert_eq!(r.closed, vec![1]);
        assert_eq!(
            r.machine,
            vec![
                MachineInput::SessionReady,
                MachineInput::ReplyConnectionClosed
            ]
        );
        assert_eq!((r.sv.counters.go_aways, r.sv.counters.hand_overs), (1, 1));
        assert_eq!(r.sv.counters.resumptions, 1);
        assert!(r.aborted.is_empty(), "nothing is cut off on a hand-over");
    }

    #[test]
    fn a_draining_link_that_never_finishes_is_closed_after_the_limit() {
        let mut r = Rig::connected();
        r.step(Input::GoAway { conn: 1 });
        r.ready(2, true);
        r.advance(Duration::from_millis(9_990));
        assert!(r.closed.is_empty());
        r.advance(Duration::from_millis(20));
        assert_eq!(r.closed, vec![1]);
    }

    #[test]
    fn a_1011_close_reconnects_at_once_and_resumes() {
        let mut r = Rig::connected();
        r.step(Input::Resumption {
            handle: Some("h-7".into()),
            resumable: true,
        });
        for _ in 0..5 {
            r.mic();
        }
        r.ack_all(1);
        r.step(Input::Lost {
            conn: 1,
            failure: Failure::Transient,
            why: "code 1011".into(),
        });
        assert_eq!(r.dials.last(), Some(&(2, Some("h-7".into()), false)));
        assert_eq!(r.sv.link_state(), Link::Offline);
        r.mic();
        r.mic();
        r.ready(2, false);
        assert_eq!(
            r.tags_on(2),
            vec![5, 6],
            "backlog first, in order, nothing twice"
        );
        assert_eq!(r.sv.counters.mic_bytes_resent, 0);
        assert_eq!(r.sv.counters.reconnects, 1);
        assert_eq!(r.sv.counters.resumptions, 1);
        assert!(r.machine.contains(&MachineInput::Disconnected));
    }

    #[test]
    fn abrupt_loss_resends_exactly_what_was_not_acknowledged() {
        let mut r = Rig::connected();
        for _ in 0..10 {
            r.mic();
        }
        // The kernel acknowledged chunks 0..=5 (their seqs), not 6..=9.
        let seq_of_5 = r.audio.iter().find(|a| a.2 == 5).unwrap().1;
        r.step(Input::Progress {
            conn: 1,
            acked_through: Some(seq_of_5),
            acked_bytes: 9_000,
            unacked_bytes: 4_000,
        });
        r.step(Input::Lost {
            conn: 1,
            failure: Failure::Transient,
            why: "reset".into(),
        });
        r.mic(); // captured while reconnecting
        r.ready(2, false);
        assert_eq!(r.tags_on(2), vec![6, 7, 8, 9, 10]);
        let c = &r.sv.counters;
        assert_eq!(c.mic_bytes_resent, 4 * CHUNK as u64);
        assert_eq!(c.mic_bytes_sent, 11 * CHUNK as u64);
        assert_eq!(c.mic_bytes_acked, 6 * CHUNK as u64);
        assert_eq!(c.mic_bytes_dropped, 0);
    }

    #[test]
    fn without_socket_information_nothing_is_sent_twice_and_the_doubt_is_counted() {
        let mut r = Rig::connected();
        for _ in 0..3 {
            r.mic();
        }
        r.step(Input::Lost {
            conn: 1,
            failure: Failure::Transient,
            why: "reset".into(),
        });
        r.ready(2, false);
        assert!(r.tags_on(2).is_empty());
        assert_eq!(r.sv.counters.mic_bytes_unconfirmed, 3 * CHUNK as u64);
    }

    #[test]
    fn a_stalled_socket_is_declared_dead_after_stall_after_and_its_audio_resent() {
        let mut r = Rig::connected();
        for _ in 0..5 {
            r.mic();
        }
        r.ack_all(1);
        let frozen_at = r.at_ms();
        // The network vanishes: acknowledgements stop while audio keeps being written.
        let mut acked = 10_000;
        let mut first_unacked = None;
        while r.dials.len() == 1 {
            let tag = r.mic();
            first_unacked.get_or_insert(tag);
            acked += 0;
            r.step(Input::Progress {
                conn: 1,
                acked_through: None,
                acked_bytes: acked,
                unacked_bytes: 1_700 * (u64::from(tag) - 4),
            });
            assert!(r.at_ms() - frozen_at < 6_000, "never declared dead");
        }
        let detected = r.at_ms() - frozen_at;
        assert!(
            (5_000..5_100).contains(&detected),
            "declared dead after {detected} ms"
        );
        assert_eq!(r.aborted, vec![1]);
        let lost_tags: Vec<u8> = r.tags_on(1).into_iter().skip(5).collect();
        r.ready(2, false);
        assert_eq!(
            r.tags_on(2),
            lost_tags,
            "the unacknowledged audio, in order"
        );
        assert_eq!(Some(lost_tags[0]), first_unacked);
        assert_eq!(
            r.sv.counters.mic_bytes_resent,
            lost_tags.len() as u64 * CHUNK as u64
        );
    }

    #[test]
    fn steady_acknowledgements_keep_a_busy_link_alive() {
        let mut r = Rig::connected();
        for i in 0..500u64 {
            r.mic();
            r.step(Input::Progress {
                conn: 1,
                acked_through: None,
                acked_bytes: i * 1_700,
                unacked_bytes: 5_000,
            });
            r.step(Input::Received { conn: 1 });
        }
        assert_eq!(r.dials.len(), 1, "20 s of slow but moving acknowledgements");
        assert!(r.aborted.is_empty());
    }

    #[test]
    fn a_silent_server_is_declared_dead_after_dead_after_on_its_own_timer() {
        let mut r = Rig::connected();
        r.advance(Duration::from_millis(44_990));
        assert_eq!(r.dials.len(), 1);
        r.advance(Duration::from_millis(20));
        assert_eq!(r.dials.len(), 2);
        assert_eq!(r.aborted, vec![1]);
        // Pings went out every 15 s while it lasted.
        let pings = r.sent.iter().filter(|s| s.2 == Outgoing::Ping).count();
        assert_eq!(pings, 2);
    }

    #[test]
    fn a_1007_backs_off_long_and_says_config() {
        let mut r = Rig::new(settings());
        r.step(Input::Open);
        r.step(Input::Tick);
        for n in 0..3 {
            let c = r.last_dial();
            r.step(Input::Dialed {
                conn: c,
                result: Err(DialFailure {
                    failure: Failure::Config,
                    why: "code 1007".into(),
                    closed_by_server: true,
                }),
                speaking: false,
            });
            assert_eq!(r.sv.link_state(), Link::Error);
            let wait = 60_000u64 << n;
            let before = r.dials.len();
            r.advance(Duration::from_millis(wait - 10));
            assert_eq!(r.dials.len(), before, "attempt {n}: too early");
            r.advance(Duration::from_millis(20));
            assert_eq!(r.dials.len(), before + 1, "attempt {n}: retried");
        }
    }

    #[test]
    fn a_missing_setup_complete_times_out_and_the_audio_from_before_arrives() {
        let mut r = Rig::new(settings());
        r.step(Input::Open);
        r.step(Input::Tick);
        for _ in 0..250 {
            r.mic(); // 10 s
        }
        assert_eq!(r.aborted, vec![1], "the dial is abandoned at setup_timeout");
        r.advance(Duration::from_millis(700));
        assert_eq!(r.dials.len(), 2, "retried after the first backoff");
        let c = r.last_dial();
        r.ready(c, false);
        let got = r.tags_on(c);
        assert_eq!(got.len(), 250);
        assert!(got.iter().copied().eq((0..250).map(|i| i as u8)));
        // The abandoned dial completing late is closed, never used.
        r.step(Input::Dialed {
            conn: 1,
            result: Ok(None),
            speaking: false,
        });
        assert_eq!(r.aborted, vec![1, 1]);
        assert_eq!(r.sv.role(1), Role::Other);
    }

    #[test]
    fn max_age_hands_over_once() {
        let mut r = Rig::connected();
        for _ in 0..54 {
            r.step(Input::Received { conn: 1 });
            r.advance(Duration::from_secs(10));
        }
        assert_eq!(r.dials.len(), 2);
        assert!(r.dials[1].2, "a hand-over");
        r.advance(Duration::from_secs(5));
        assert_eq!(r.dials.len(), 2, "only once");
        r.ready(2, false);
        assert_eq!(
            r.closed,
            vec![1],
            "not speaking: the old link closes at once"
        );
    }

    #[test]
    fn a_refused_handle_is_forgotten_and_the_next_attempt_is_new() {
        let mut r = Rig::connected();
        r.step(Input::Resumption {
            handle: Some("h-old".into()),
            resumable: true,
        });
        r.step(Input::Lost {
            conn: 1,
            failure: Failure::Transient,
            why: "1011".into(),
        });
        assert_eq!(r.dials[1].1.as_deref(), Some("h-old"));
        r.step(Input::Dialed {
            conn: 2,
            result: Err(DialFailure {
                failure: Failure::Transient,
                why: "1008".into(),
                closed_by_server: true,
            }),
            speaking: false,
        });
        assert_eq!(r.saved.last(), Some(&None));
        r.advance(Duration::from_secs(1));
        assert_eq!(r.dials[2].1, None);
    }

    #[test]
    fn a_kept_handle_is_used_after_a_restart_if_young_enough() {
        let mut r = Rig::new(settings());
        r.sv.restore_handle("h-kept".into(), Duration::from_secs(600), r.now);
        r.step(Input::Open);
        r.step(Input::Tick);
        assert_eq!(r.dials[0].1.as_deref(), Some("h-kept"));
        let mut r = Rig::new(settings());
        r.sv.restore_handle("h-old".into(), Duration::from_secs(3 * 3600), r.now);
        r.step(Input::Open);
        r.step(Input::Tick);
        assert_eq!(r.dials[0].1, None);
    }

    #[test]
    fn a_full_backlog_drops_the_oldest_and_counts_it() {
        let mut s = settings();
        s.backlog_bytes = 4 * CHUNK;
        let mut r = Rig::new(s);
        r.step(Input::Open);
        for _ in 0..6 {
            r.mic();
        }
        r.ready(r.last_dial(), false);
        assert_eq!(r.tags_on(1), vec![2, 3, 4, 5]);
        assert_eq!(r.sv.counters.mic_bytes_dropped, 2 * CHUNK as u64);
    }

    #[test]
    fn a_writer_that_takes_nothing_holds_the_mic_in_the_backlog_not_in_memory() {
        let mut s = settings();
        s.max_in_flight = 3;
        let mut r = Rig::new(s);
        r.step(Input::Open);
        r.step(Input::Tick);
        r.ready(1, false);
        for _ in 0..5 {
            r.mic();
        }
        assert_eq!(r.tags_on(1), vec![0, 1, 2]);
        assert_eq!(r.sv.backlog_bytes(), 2 * CHUNK as u64);
        r.ack_all(1);
        assert_eq!(
            r.tags_on(1),
            vec![0, 1, 2, 3, 4],
            "in order once acknowledged"
        );
    }

    #[test]
    fn ending_the_session_closes_forgets_and_keeps_no_audio() {
        let mut r = Rig::connected();
        r.step(Input::Resumption {
            handle: Some("h".into()),
            resumable: true,
        });
        r.step(Input::Close("long press"));
        assert_eq!(r.closed, vec![1]);
        assert_eq!(r.saved.last(), Some(&None));
        assert_eq!(r.sv.link_state(), Link::Idle);
        r.mic();
        r.advance(Duration::from_secs(60));
        assert_eq!(r.dials.len(), 1, "no redial while idle");
        r.step(Input::Open);
        r.step(Input::Tick);
        assert_eq!(r.dials[1].1, None, "a new conversation");
    }

    #[test]
    fn push_to_talk_before_the_link_is_sent_first_once_ready() {
        let mut r = Rig::new(settings());
        r.step(Input::Open);
        r.step(Input::Tick);
        r.step(Input::Activity("start".into()));
        r.mic();
        r.ready(1, false);
        assert_eq!(r.sent[0].2, Outgoing::Json("start".into()));
        assert!(matches!(r.sent[1].2, Outgoing::Audio(_)));
    }

    #[test]
    fn next_deadline_covers_every_timer() {
        let mut r = Rig::connected();
        let d = r.sv.next_deadline().unwrap();
        assert_eq!(d, r.now + Duration::from_secs(15), "the ping");
        r.step(Input::Progress {
            conn: 1,
            acked_through: None,
            acked_bytes: 0,
            unacked_bytes: 10,
        });
        assert_eq!(
            r.sv.next_deadline().unwrap(),
            r.now + Duration::from_secs(5),
            "the stall"
        );
    }
}
