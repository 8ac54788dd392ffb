//! Capture-side echo handling: the canceller (WebRTC AEC3 via `sonora`), the reference
//! timeline it is fed from, and the half-duplex gate that covers for it (`docs/aec.md`,
//! "Wiring" and "Half-duplex gate").
//!
//! Everything here is device-free: the capture thread, the benchmark (`benches/aec.rs`) and the
//! unit tests all drive the same [`EchoProcessor`] with explicit CLOCK_MONOTONIC timestamps.
//!
//! ```text
//!  playback thread ──RefMsg (what was written, when it will be heard)──▶ reference timeline
//!  capture thread  ──mic samples + when they were captured──▶ hold ─▶ AEC3 ─▶ gate ─▶ out
//! ```
//!
//! Timing rule (`docs/aec.md`, same heading): the reference must reach the canceller *before*
//! its echo does. For each 10 ms capture frame captured at `t`, the canceller gets the reference
//! that is heard at `t + LEAD`. The lag it sees is then LEAD + the acoustic path: always causal,
//! and well within the ~300 ms AEC3's delay search spans (`aec3::DelaySearch`). A capture
//! frame is held until the reference for `t + LEAD + 10 ms` is known (or that moment has
//! passed: nothing written later can play then), which costs the uplink LEAD + 10 ms of
//! latency at most.

pub mod aec3;
#[doc(hidden)]
pub mod synth;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use crate::audio::EchoMode;

use super::INPUT_RATE_HZ;

/// How far ahead of its echo the reference is fed (see the module doc).
pub const LEAD_S: f64 = 0.040;
/// Capture frame: 10 ms at 16 kHz, the canceller's unit of work.
pub const FRAME: usize = (INPUT_RATE_HZ / 100) as usize;
/// Reference samples per message: 20 ms at 48 kHz; messages are fixed-size (no allocation).
pub const REF_BLOCK: usize = 960;
/// Reference messages in flight: ~1.3 s at 24 kHz, 20 ms each.
const REF_QUEUE: usize = 64;
/// A reference block this much later than the stream's end means the speaker was idle (or
/// underran) in between; anything less is delay-reading jitter. Misjudging it only ever makes
/// the reference lead by more, which the canceller tolerates.
const GAP_S: f64 = 0.030;
/// How long the canceller is distrusted (the gate shut) after something disturbed it.
const UNHEALTHY_S: f64 = 2.0;
/// Capture timestamps further off than this are a real jump (xrun, reopen): resynchronise.
const RESYNC_S: f64 = 0.150;
/// Average capture timestamp error corrected in one step, when no reply is heard ...
// Not less: PulseAudio's reported capture latency wanders by 10-15 ms for minutes on end, and
// each correction costs the next reply's first 1.5 s in half duplex. Real clock drift (50 ppm)
// takes 400 s to reach this, and the reference still leads its echo by 20 ms then.
const SLEW_S: f64 = 0.020;
/// ... and corrected even while one is.
const SLEW_MAX_S: f64 = 0.030;
/// Far-end audio counts as active above this level (`docs/aec.md`, "Half-duplex gate").
const ACTIVE_DBFS: f64 = -60.0;
/// The canceller is trusted after this much far-end audio (AEC3 converged within 0.5 s).
const WARMUP_FRAMES: u32 = 100;
/// ... and again after this much once the capture clock was corrected, even in a pause: the
/// reference then sits elsewhere under the echo when the reply resumes (measured through
/// PulseAudio: an 12 ms slew in a pause leaked echo 15 dB below the mic for 1.5 s).
const RECONVERGE_FRAMES: u32 = 150;
/// Local barge-in: the mic must beat the predicted echo by this much ...
const OPEN_MARGIN_DB: f64 = 10.0;
/// ... for this many 10 ms frames (net, see `Gate::score`): 150 ms.
const OPEN_FRAMES: u32 = 15;
/// Mic audio kept while gated, sent when the gate opens: 500 ms.
const PREROLL: usize = INPUT_RATE_HZ as usize / 2;
/// The reference timeline never holds more than this (a stalled capture thread).
const MAX_REF_S: f64 = 3.0;
/// AEC3 is skipped after this long without audible playback (and at least the echo tail): a
/// pause between replies, not one between a reply's sentences, where skipping measurably cost
/// the next sentence about 1 dB of ERLE on the synthetic room.
const IDLE_BYPASS_S: f64 = 1.0;

/// CLOCK_MONOTONIC in seconds: the one timeline both audio threads stamp their samples on.
pub fn now_s() -> f64 {
    crate::service::monotonic_s()
}

/// From the playback thread to the capture thread.
// Fixed-size on purpose: a message per 20 ms period must not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum RefMsg {
    /// `len` samples at `rate_hz`, the first heard at `t` (monotonic seconds).
    Audio {
        t: f64,
        rate_hz: u32,
        len: u16,
        samples: [i16; REF_BLOCK],
    },
    /// Playback was dropped at `t`: reference after it never played.
    Dropped { t: f64 },
}

/// The playback thread's end: never blocks (a full queue loses reference and counts it).
pub struct ReferenceTx {
    tx: SyncSender<RefMsg>,
    pub lost: u64,
}

/// The capture thread's end.
pub struct ReferenceRx {
    rx: Receiver<RefMsg>,
}

pub fn reference_channel() -> (ReferenceTx, ReferenceRx) {
    let (tx, rx) = std::sync::mpsc::sync_channel(REF_QUEUE);
    (ReferenceTx { tx, lost: 0 }, ReferenceRx { rx })
}

impl ReferenceTx {
    /// `samples` (at `rate_hz`) start being heard at `t`.
    pub fn played(&mut self, t: f64, rate_hz: u32, samples: &[i16]) {
        for (i, block) in samples.chunks(REF_BLOCK).enumerate() {
            let mut buf = [0i16; REF_BLOCK];
            buf[..block.len()].copy_from_slice(block);
            let msg = RefMsg::Audio {
                t: t + (i * REF_BLOCK) as f64 / f64::from(rate_hz),
                rate_hz,
                len: block.len() as u16,
                samples: buf,
            };
            if let Err(TrySendError::Full(_)) = self.tx.try_send(msg) {
                self.lost += 1;
            }
        }
    }

    /// Playback was dropped at `t` (barge-in, device lost).
    pub fn dropped(&mut self, t: f64) {
        // A drop must not be lost: if the queue is full, the capture side is far behind and
        // will resynchronise on timestamps anyway, so losing it only costs accuracy.
        if self.tx.try_send(RefMsg::Dropped { t }).is_err() {
            self.lost += 1;
        }
    }
}

impl ReferenceRx {
    /// Moves everything the playback thread sent into `p`.
    pub fn drain_into(&self, p: &mut EchoProcessor) {
        while let Ok(m) = self.rx.try_recv() {
            p.reference(&m);
        }
    }
}

/// Shared with the daemon: telemetry only (events travel as typed messages).
#[derive(Debug)]
pub struct EchoStats {
    /// Times the local barge-in detector fired (gate opened, or the user clearly talked over
    /// the reply); each also reaches the daemon as a `CaptureEvent::BargeIn`.
    pub gate_openings: AtomicU64,
    /// 10 ms frames sent as silence by the gate.
    pub gated_frames: AtomicU64,
    /// 10 ms frames run through the canceller.
    pub aec_frames: AtomicU64,
    /// 10 ms frames that went past the canceller because nothing had played for longer than
    /// the echo tail (no echo to cancel; AEC3 costs as much on silence as during a reply).
    pub aec_idle_frames: AtomicU64,
    /// Canceller delay estimate, ms (`i64::MIN` = none yet).
    pub delay_ms: AtomicI64,
    /// Canceller ERLE estimate, hundredths of a dB (`i64::MIN` = none yet).
    pub erle_cdb: AtomicI64,
    /// Canceller echo-return-loss estimate (stream to mic), hundredths of a dB.
    pub erl_cdb: AtomicI64,
    /// Our own measurement: mic energy over output energy in the last second with at least
    /// 0.5 s of far-end audio (double talk lowers it), hundredths of a dB (`i64::MIN` = none).
    pub measured_erle_cdb: AtomicI64,
}

impl Default for EchoStats {
    fn default() -> Self {
        EchoStats {
            gate_openings: AtomicU64::new(0),
            gated_frames: AtomicU64::new(0),
            aec_frames: AtomicU64::new(0),
            aec_idle_frames: AtomicU64::new(0),
            delay_ms: AtomicI64::new(i64::MIN),
            erle_cdb: AtomicI64::new(i64::MIN),
            erl_cdb: AtomicI64::new(i64::MIN),
            measured_erle_cdb: AtomicI64::new(i64::MIN),
        }
    }
}

impl EchoStats {
    pub fn delay_ms(&self) -> Option<i64> {
        let v = self.delay_ms.load(Ordering::Relaxed);
        (v != i64::MIN).then_some(v)
    }

    pub fn erle_db(&self) -> Option<f64> {
        centi_db(&self.erle_cdb)
    }

    pub fn erl_db(&self) -> Option<f64> {
        centi_db(&self.erl_cdb)
    }

    pub fn measured_erle_db(&self) -> Option<f64> {
        centi_db(&self.measured_erle_cdb)
    }

    /// One line for logs and the session summary.
    pub fn summary(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| {
            v.map(|x| format!("{x:.1} {unit}"))
                .unwrap_or_else(|| "n/a".into())
        };
        format!(
            "echo: delay {}, ERLE {} (AEC3 linear-filter estimate {}), ERL {}, gate openings {}, gated {} ms, AEC3 skipped {} of {} s (nothing playing)",
            opt(self.delay_ms().map(|d| d as f64), "ms"),
            opt(self.measured_erle_db(), "dB"),
            opt(self.erle_db(), "dB"),
            opt(self.erl_db(), "dB"),
            self.gate_openings.load(Ordering::Relaxed),
            self.gated_frames.load(Ordering::Relaxed) * 10,
            self.aec_idle_frames.load(Ordering::Relaxed) / 100,
            (self.aec_idle_frames.load(Ordering::Relaxed) + self.aec_frames.load(Ordering::Relaxed))
                / 100,
        )
    }
}

/// A hundredths-of-a-dB counter in dB (`i64::MIN` = no estimate yet).
fn centi_db(v: &AtomicI64) -> Option<f64> {
    let v = v.load(Ordering::Relaxed);
    (v != i64::MIN).then_some(v as f64 / 100.0)
}

/// Settings of one processor.
#[derive(Debug, Clone, Copy)]
pub struct EchoSettings {
    pub mode: EchoMode,
    /// Far end counts as active this long after its last audible sample (room tail, output
    /// latency): `[audio] echo_tail_ms`.
    pub tail_s: f64,
    /// Rate of the playback stream (replies are 24 kHz).
    pub render_rate_hz: u32,
}

/// The continuous playback stream as heard, on the monotonic timeline.
struct Timeline {
    rate: f64,
    /// Time the front sample is heard.
    t0: f64,
    samples: VecDeque<f32>,
}

impl Timeline {
    fn new(rate_hz: u32) -> Self {
        Timeline {
            rate: f64::from(rate_hz),
            t0: 0.0,
            samples: VecDeque::with_capacity((MAX_REF_S * f64::from(rate_hz)) as usize + 1),
        }
    }

    fn end(&self) -> f64 {
        self.t0 + self.samples.len() as f64 / self.rate
    }

    /// Appends a block heard from `t`. The stream is contiguous by construction (the playback
    /// thread writes it sample after sample), so timestamps only insert silence for real
    /// gaps (idle speaker, underrun); overlaps without a drop are timestamp jitter.
    fn push(&mut self, t: f64, block: &[i16]) {
        if self.samples.is_empty() {
            self.t0 = t;
        } else {
            let gap = t - self.end();
            if gap > MAX_REF_S {
                self.samples.clear();
                self.t0 = t;
            } else if gap > GAP_S {
                log::debug!("echo reference: {:.1} ms gap", gap * 1000.0);
                let n = (gap * self.rate).round() as usize;
                self.samples.extend(std::iter::repeat_n(0.0, n));
            }
        }
        self.samples
            .extend(block.iter().map(|&s| f32::from(s) / 32768.0));
        let max = (MAX_REF_S * self.rate) as usize;
        if self.samples.len() > max {
            let n = self.samples.len() - max;
            self.samples.drain(..n);
            self.t0 += n as f64 / self.rate;
        }
    }

    /// Forgets everything heard from `t` on: it never played.
    fn truncate_after(&mut self, t: f64) {
        let keep = ((t - self.t0) * self.rate).round();
        if keep <= 0.0 {
            self.samples.clear();
        } else if (keep as usize) < self.samples.len() {
            self.samples.truncate(keep as usize);
        }
    }

    /// Copies what is heard from `t` on into `out` (zeros where nothing plays) and forgets
    /// everything before `t`: capture time only moves forward.
    fn read(&mut self, t: f64, out: &mut [f32]) {
        let start = ((t - self.t0) * self.rate).round() as i64;
        for (i, o) in out.iter_mut().enumerate() {
            let idx = start + i as i64;
            *o = if idx >= 0 {
                self.samples.get(idx as usize).copied().unwrap_or(0.0)
            } else {
                0.0
            };
        }
        if start > 0 {
            let n = (start as usize).min(self.samples.len());
            self.samples.drain(..n);
            self.t0 += n as f64 / self.rate;
        }
    }
}

/// The fallback gate and the local barge-in detector (`docs/aec.md`, "Half-duplex gate").
struct Gate {
    /// Leaky count of frames where the mic beat the predicted echo by `OPEN_MARGIN_DB`.
    score: u32,
    /// The detector fired during this stretch of far-end audio; re-armed when it ends.
    fired: bool,
    /// Processed mic audio kept while gated.
    preroll: VecDeque<i16>,
}

/// Level of a frame in dBFS (f32 samples in [-1, 1]); −120 for silence.
fn dbfs(x: &[f32]) -> f64 {
    let e: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let ms = e / x.len().max(1) as f64;
    if ms <= 1e-12 {
        -120.0
    } else {
        10.0 * ms.log10()
    }
}

/// Capture-side processing: hold, cancel, gate. See the module doc.
pub struct EchoProcessor {
    settings: EchoSettings,
    apm: Option<aec3::Aec3>,
    timeline: Timeline,
    /// Mic samples waiting for their reference; `cap_t0` is when the front one was captured.
    pending: VecDeque<i16>,
    cap_t0: f64,
    /// Smoothed error of the device's capture timestamps against our sample clock, s.
    cap_err: f64,
    /// When the reference last had audible far-end audio (monotonic s; −inf = never).
    last_active: f64,
    /// Reference levels (dBFS) of the last `tail_s`: the predicted echo is their maximum, held
    /// over the whole tail (room decay, output latency we cannot see) to stay on the safe side.
    ref_levels: VecDeque<f64>,
    /// Far-end-active frames the canceller has seen (warm-up).
    far_frames: u32,
    /// Not trusted before `far_frames` reaches this (a correction of the capture clock).
    trust_after: u32,
    /// Not trusted until this time (unhealthy statistics).
    unhealthy_until: f64,
    last_delay: Option<i32>,
    /// The canceller's echo-return-loss estimate (speaker stream to mic), dB.
    erl_db: Option<f64>,
    /// The last estimate made while the canceller was trusted: a property of the room, which
    /// a correction of our clock does not change, so the detector keeps it while AEC3
    /// converges again.
    erl_trusted: Option<f64>,
    /// Energy in/out over far-end-only frames since the last readout (measured ERLE).
    erle_in: f64,
    erle_out: f64,
    erle_frames: u32,
    low_erle_s: f64,
    frames: u64,
    gate: Gate,
    /// The button interrupted a reply: open the gate at the next frame and send the pre-roll.
    open_requested: bool,
    /// The canceller's output before the gate, for a listener that must hear the user while
    /// the gate is shut (the wake word); `None` unless asked for.
    ungated: Option<Vec<i16>>,
    dither: u32,
    render: Vec<f32>,
    cap_in: [f32; FRAME],
    cap_out: [f32; FRAME],
    /// Skip AEC3 while nothing plays (see `frame`); off only to measure what it saves.
    idle_bypass: bool,
}

impl EchoProcessor {
    pub fn new(settings: EchoSettings) -> Self {
        let apm = (settings.mode == EchoMode::Aec)
            .then(|| aec3::Aec3::new(settings.render_rate_hz, aec3::DelaySearch::DEFAULT));
        EchoProcessor {
            settings,
            apm,
            timeline: Timeline::new(settings.render_rate_hz),
            pending: VecDeque::with_capacity(INPUT_RATE_HZ as usize),
            cap_t0: f64::NEG_INFINITY,
            cap_err: 0.0,
            last_active: f64::NEG_INFINITY,
            ref_levels: VecDeque::with_capacity((settings.tail_s * 100.0) as usize + 2),
            far_frames: 0,
            trust_after: WARMUP_FRAMES,
            unhealthy_until: f64::NEG_INFINITY,
            last_delay: None,
            erl_db: None,
            erl_trusted: None,
            erle_in: 0.0,
            erle_out: 0.0,
            erle_frames: 0,
            low_erle_s: 0.0,
            frames: 0,
            gate: Gate {
                score: 0,
                fired: false,
                preroll: VecDeque::with_capacity(PREROLL),
            },
            open_requested: false,
            ungated: None,
            dither: 0x9e37_79b9,
            render: vec![0.0; settings.render_rate_hz as usize / 100],
            cap_in: [0.0; FRAME],
            cap_out: [0.0; FRAME],
            idle_bypass: true,
        }
    }

    /// AEC3 with another delay search: the benchmark compares ours with WebRTC's.
    pub fn with_delay_search(mut self, search: aec3::DelaySearch) -> Self {
        if let Some(a) = self.apm.as_mut() {
            *a = aec3::Aec3::new(a.render_rate_hz(), search);
        }
        self
    }

    /// Run AEC3 on every frame, idle or not: the behaviour before the idle bypass, for the
    /// benchmark that measures it.
    pub fn without_idle_bypass(mut self) -> Self {
        self.idle_bypass = false;
        self
    }

    pub fn mode(&self) -> EchoMode {
        self.settings.mode
    }

    /// The user asked to talk (the button stopped the reply): the gate opens at once and what
    /// they said while it was shut follows, without counting as a detection.
    pub fn open_gate(&mut self) {
        self.open_requested = true;
    }

    /// Keep the canceller's output before the gate too (see `take_ungated`).
    pub fn keep_ungated(&mut self) {
        self.ungated.get_or_insert_with(Vec::new);
    }

    /// Moves the ungated output processed since the last call into `out`.
    pub fn take_ungated(&mut self, out: &mut Vec<i16>) {
        if let Some(u) = self.ungated.as_mut() {
            out.append(u);
        }
    }

    /// One message from the playback thread.
    pub fn reference(&mut self, m: &RefMsg) {
        match *m {
            RefMsg::Audio {
                t,
                rate_hz,
                len,
                ref samples,
            } => {
                if rate_hz != self.settings.render_rate_hz {
                    // Replies switched rate (rare): start over at the new one.
                    log::info!("echo reference now {rate_hz} Hz; restarting the canceller");
                    self.settings.render_rate_hz = rate_hz;
                    self.timeline = Timeline::new(rate_hz);
                    self.render = vec![0.0; rate_hz as usize / 100];
                    if let Some(a) = self.apm.as_mut() {
                        *a = aec3::Aec3::new(rate_hz, a.search());
                        self.far_frames = 0;
                        self.trust_after = WARMUP_FRAMES;
                    }
                }
                let len = usize::from(len).min(REF_BLOCK);
                self.timeline.push(t, &samples[..len]);
            }
            RefMsg::Dropped { t } => self.timeline.truncate_after(t),
        }
    }

    /// Mic samples whose first was captured at `t` (monotonic s).
    ///
    /// Device delay readings jitter by a period or more (PulseAudio's alternate between 0 and
    /// 20 ms), and every jump of the capture clock would move the reference under the
    /// canceller. So the stream keeps its own sample clock and follows the readings slowly:
    /// their average error is corrected once it exceeds `SLEW_S` (clock drift, over minutes)
    /// and no reply is heard, and only a jump beyond `RESYNC_S` (an xrun, a reopened device) is
    /// taken at once.
    pub fn capture(&mut self, t: f64, samples: &[i16]) {
        let expected = self.cap_t0 + self.pending.len() as f64 / f64::from(INPUT_RATE_HZ);
        let err = t - expected;
        if !err.is_finite() || err.abs() > RESYNC_S {
            if self.cap_t0.is_finite() {
                log::debug!(
                    "echo: capture clock resynchronised ({:.1} ms)",
                    err * 1000.0
                );
            }
            self.distrust_after_correction(t);
            self.cap_t0 = t - self.pending.len() as f64 / f64::from(INPUT_RATE_HZ);
            self.cap_err = 0.0;
        } else {
            self.cap_err += (err - self.cap_err) * 0.02;
            // A correction moves the echo under the canceller: while a reply is heard, AEC3's
            // filter would have to converge again, and until it has, echo leaks (measured on a
            // throttled CPU: 1.5 s at 18 dB below the mic). So it waits for a pause, unless the
            // error eats most of the lead (the reference would start to lag its echo).
            let must = self.cap_err.abs() > SLEW_MAX_S;
            if self.cap_err.abs() > SLEW_S && (must || !self.far_end_recent()) {
                log::debug!("echo: capture clock slewed {:.1} ms", self.cap_err * 1000.0);
                self.distrust_after_correction(t);
                self.cap_t0 += self.cap_err;
                self.cap_err = 0.0;
            }
        }
        self.pending.extend(samples.iter().copied());
    }

    /// The reference just moved under the canceller: while a reply is heard, the half-duplex
    /// gate covers the time AEC3 takes to converge again (`UNHEALTHY_S`).
    /// In a pause, the next reply meets the moved reference instead: its first
    /// `RECONVERGE_FRAMES` are gated.
    fn distrust_after_correction(&mut self, t: f64) {
        if !self.cap_t0.is_finite() {
            return;
        }
        if self.far_end_recent() {
            self.unhealthy_until = self.unhealthy_until.max(t + UNHEALTHY_S);
        } else {
            self.trust_after = self
                .trust_after
                .max(self.far_frames.saturating_add(RECONVERGE_FRAMES));
        }
    }

    /// Processes every held frame whose reference is known by `now`, appending the result
    /// (mic audio to send; may include a pre-roll burst) to `out`. Returns true if the local
    /// barge-in detector fired.
    pub fn process(&mut self, now: f64, out: &mut Vec<i16>, stats: &EchoStats) -> bool {
        let mut fired = false;
        while self.pending.len() >= FRAME {
            let need = self.cap_t0 + LEAD_S + 0.010;
            if self.settings.mode != EchoMode::None && now < need && self.timeline.end() < need {
                break;
            }
            fired |= self.frame(out, stats);
            self.cap_t0 += FRAME as f64 / f64::from(INPUT_RATE_HZ);
        }
        fired
    }

    fn frame(&mut self, out: &mut Vec<i16>, stats: &EchoStats) -> bool {
        let t = self.cap_t0;
        for (d, s) in self.cap_in.iter_mut().zip(self.pending.drain(..FRAME)) {
            *d = f32::from(s) / 32768.0;
        }
        if self.settings.mode == EchoMode::None {
            push_f32(out, &self.cap_in);
            if let Some(u) = self.ungated.as_mut() {
                push_ungated(u, &self.cap_in);
            }
            return false;
        }
        self.timeline.read(t + LEAD_S, &mut self.render);
        let ref_db = dbfs(&self.render);
        let far_now = ref_db > ACTIVE_DBFS;
        if far_now {
            self.last_active = t + LEAD_S;
        }
        let hold = (self.settings.tail_s * 100.0) as usize + 1;
        while self.ref_levels.len() >= hold {
            self.ref_levels.pop_front();
        }
        self.ref_levels.push_back(ref_db);
        let far_recent = t <= self.last_active + self.settings.tail_s;
        let mic_in_db = dbfs(&self.cap_in);

        let idle = t > self.last_active + self.settings.tail_s.max(IDLE_BYPASS_S);
        if self.apm.is_some() && idle && self.idle_bypass {
            // Nothing audible has played for longer than the echo tail: there is no echo to
            // cancel. Skipping AEC3's render and capture calls together keeps its filter and
            // delay estimate as they were (the room has not changed), so it cancels from the
            // first frame when playback resumes; the reference it then sees after the gap was
            // silence anyway, as it would have been had it run.
            self.cap_out = self.cap_in;
            stats.aec_idle_frames.fetch_add(1, Ordering::Relaxed);
        } else if let Some(apm) = self.apm.as_mut() {
            // ±1 LSB dither: exact digital silence costs AEC3 3× the CPU (denormals).
            for r in self.render.iter_mut() {
                self.dither ^= self.dither << 13;
                self.dither ^= self.dither >> 17;
                self.dither ^= self.dither << 5;
                *r += ((self.dither >> 30) as f32 - 1.5) / 32768.0;
            }
            apm.process(&self.render, &self.cap_in, &mut self.cap_out);
            stats.aec_frames.fetch_add(1, Ordering::Relaxed);
            if far_now {
                self.far_frames = self.far_frames.saturating_add(1);
            }
        } else {
            self.cap_out = self.cap_in;
        }
        if let Some(u) = self.ungated.as_mut() {
            push_ungated(u, &self.cap_out);
        }
        let out_db = dbfs(&self.cap_out);
        self.frames += 1;
        if self.apm.is_some() {
            if far_now && mic_in_db > -70.0 {
                self.erle_in += 10f64.powf(mic_in_db / 10.0);
                self.erle_out += 10f64.powf(out_db / 10.0);
                self.erle_frames += 1;
            }
            if self.frames.is_multiple_of(100) {
                self.readout(t, far_recent, stats);
            }
        }

        // Which ERLE may the gate count on: none unless the canceller is trusted.
        let trusted =
            self.apm.is_some() && self.far_frames >= self.trust_after && t >= self.unhealthy_until;
        let gated = far_recent && !trusted && !self.gate.fired;
        if !far_recent {
            // The stretch of far-end audio is over: re-arm for the next reply.
            self.gate.fired = false;
            self.gate.score = 0;
        }
        // Predicted echo at the mic: the loudest reference of the tail, less the echo return
        // loss the canceller measured once it is trusted. Before that, ERL 0 dB (the speaker as
        // loud at the mic as in the stream): a bad guess then means "speak up or press the
        // button", never a self-interruption. We judge the canceller's output, which holds
        // less echo than the mic, so a residual cannot pass for the user either.
        // Untrusted again later (a clock correction, a moved delay), the room's ERL is still
        // known: echo leaking while AEC3 converges is at most the echo itself, 10 dB short of
        // opening, and the user who talked over a trusted canceller still can.
        if trusted {
            self.erl_trusted = self.erl_db;
        }
        let erl = if trusted {
            self.erl_db
        } else {
            self.erl_trusted
        }
        .unwrap_or(0.0)
        .clamp(0.0, 40.0);
        let predicted = self.ref_levels.iter().copied().fold(-120.0, f64::max) - erl;
        let mut fired = false;
        // The button: the user asked to talk. Open without counting it as a detection (the
        // daemon has already stopped the reply).
        let pressed = std::mem::take(&mut self.open_requested);
        if pressed && far_recent && !self.gate.fired {
            self.gate.fired = true;
            if gated {
                out.extend(self.gate.preroll.drain(..));
            }
        }
        let gated = gated && !self.gate.fired;
        if far_recent && !self.gate.fired {
            if out_db >= predicted + OPEN_MARGIN_DB && out_db > -50.0 {
                self.gate.score += 1;
            } else {
                self.gate.score = self.gate.score.saturating_sub(1);
            }
            if self.gate.score >= OPEN_FRAMES {
                self.gate.fired = true;
                fired = true;
                stats.gate_openings.fetch_add(1, Ordering::Relaxed);
            }
        }
        if gated && !fired {
            stats.gated_frames.fetch_add(1, Ordering::Relaxed);
            for &x in &self.cap_out {
                if self.gate.preroll.len() == PREROLL {
                    self.gate.preroll.pop_front();
                }
                self.gate.preroll.push_back(to_i16(x));
            }
            out.extend(std::iter::repeat_n(0i16, FRAME));
        } else {
            if fired && gated {
                // The user talked over the reply: what they said while we sent silence
                // follows now, before the live audio.
                out.extend(self.gate.preroll.drain(..));
            }
            self.gate.preroll.clear();
            push_f32(out, &self.cap_out);
        }
        fired
    }

    /// Once a second: canceller statistics, health (`docs/aec.md`, "Half-duplex gate"), telemetry.
    fn readout(&mut self, t: f64, far_recent: bool, stats: &EchoStats) {
        let Some(apm) = self.apm.as_ref() else { return };
        let s = apm.stats();
        if let Some(s) = s {
            let d = s.delay_ms;
            // Before warm-up the estimate is still searching; jumps then mean nothing.
            if far_recent && self.far_frames >= WARMUP_FRAMES {
                if let Some(prev) = self.last_delay {
                    if (d - prev).abs() > 50 {
                        // The echo path moved: distrust the canceller for a while.
                        log::debug!("echo: delay moved {prev} -> {d} ms; gating for 2 s");
                        self.unhealthy_until = t + UNHEALTHY_S;
                    }
                }
                self.last_delay = Some(d);
            }
            stats.delay_ms.store(i64::from(d), Ordering::Relaxed);
            if far_recent {
                self.erl_db = Some(s.erl_db);
                stats
                    .erl_cdb
                    .store((s.erl_db * 100.0).round() as i64, Ordering::Relaxed);
            }
            stats
                .erle_cdb
                .store((s.erle_db * 100.0).round() as i64, Ordering::Relaxed);
        }
        // Only a second with enough far-end audio says anything (not the tail of a reply).
        if self.erle_frames >= 50 && self.erle_in > 0.0 && self.erle_out > 0.0 {
            let m = 10.0 * (self.erle_in / self.erle_out).log10();
            stats
                .measured_erle_cdb
                .store((m * 100.0).round() as i64, Ordering::Relaxed);
            if self.far_frames >= WARMUP_FRAMES && m < 10.0 {
                self.low_erle_s += 1.0;
                if self.low_erle_s > 2.0 {
                    log::debug!(
                        "echo: cancelling only {m:.1} dB for {} s; gating for 2 s",
                        self.low_erle_s
                    );
                    self.unhealthy_until = t + UNHEALTHY_S;
                }
            } else {
                self.low_erle_s = 0.0;
            }
        }
        log::trace!(
            "echo readout at {t:.3}: delay {:?} ms, ERL {:?}, ERLE {:?}, far recent {far_recent}, far frames {}, unhealthy until {:.3}",
            s.map(|s| s.delay_ms),
            s.map(|s| s.erl_db.round()),
            s.map(|s| s.erle_db.round()),
            self.far_frames,
            self.unhealthy_until
        );
        self.erle_in = 0.0;
        self.erle_out = 0.0;
        self.erle_frames = 0;
    }

    /// The far end is (or was within the tail) audible at capture time `t`.
    pub fn far_end_recent(&self) -> bool {
        self.cap_t0 <= self.last_active + self.settings.tail_s
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// One frame into the ungated copy. Bounded by the caller draining it every period; a
/// stalled caller loses the oldest second.
fn push_ungated(u: &mut Vec<i16>, x: &[f32]) {
    if u.len() >= INPUT_RATE_HZ as usize {
        u.drain(..FRAME);
    }
    push_f32(u, x);
}

fn push_f32(out: &mut Vec<i16>, x: &[f32]) {
    out.extend(x.iter().map(|&v| to_i16(v)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: EchoMode) -> EchoSettings {
        EchoSettings {
            mode,
            tail_s: 0.3,
            render_rate_hz: 24_000,
        }
    }

    fn block(t: f64, v: i16) -> RefMsg {
        RefMsg::Audio {
            t,
            rate_hz: 24_000,
            len: 240,
            samples: [v; REF_BLOCK],
        }
    }

    #[test]
    fn timeline_fills_gaps_and_forgets_what_never_played() {
        let mut tl = Timeline::new(24_000);
        tl.push(10.0, &[100; 240]);
        tl.push(10.0101, &[200; 240]); // 0.1 ms late: jitter, contiguous
        assert_eq!(tl.samples.len(), 480);
        tl.push(10.1, &[300; 240]); // 80 ms idle speaker: silence in between
        assert!((tl.end() - 10.11).abs() < 1e-4, "{}", tl.end());
        tl.truncate_after(10.105); // dropped halfway through the last block
        assert!((tl.end() - 10.105).abs() < 1e-4);
        let mut out = [0f32; 240];
        tl.read(10.0, &mut out);
        assert!(out.iter().all(|&v| (v - 100.0 / 32768.0).abs() < 1e-9));
        tl.read(10.095, &mut out);
        assert_eq!(out[0], 0.0, "the idle gap reads as silence");
        assert!(out[239] > 0.0);
        tl.read(10.2, &mut out);
        assert!(out.iter().all(|&v| v == 0.0), "nothing after the drop");
    }

    /// Feeds `secs` of a reference at level `ref_v` and a mic of `mic(i)` in 10 ms steps, the
    /// reference 50 ms ahead like a playback thread; returns the output.
    fn drive(
        p: &mut EchoProcessor,
        stats: &EchoStats,
        secs: f64,
        ref_v: i16,
        mic: impl Fn(usize) -> i16,
    ) -> Vec<i16> {
        let mut out = Vec::new();
        let steps = (secs * 100.0) as usize;
        for k in 0..steps + 5 {
            let v = if k < steps { ref_v } else { 0 };
            p.reference(&block(100.0 + k as f64 * 0.01, v));
            if k >= 5 {
                let j = k - 5;
                let m: Vec<i16> = (j * 160..(j + 1) * 160).map(&mic).collect();
                p.capture(100.0 + j as f64 * 0.01, &m);
                p.process(100.0 + (j + 1) as f64 * 0.01, &mut out, stats);
            }
        }
        out
    }

    #[test]
    fn half_duplex_sends_silence_and_never_opens_on_its_own_echo() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::HalfDuplex));
        // The echo at the mic as loud as the stream itself: worst case, must stay shut.
        let out = drive(&mut p, &stats, 2.0, 8000, |i| {
            if i % 2 == 0 {
                8000
            } else {
                -8000
            }
        });
        assert_eq!(stats.gate_openings.load(Ordering::Relaxed), 0);
        let gated = out.iter().filter(|&&v| v == 0).count();
        assert!(gated >= 2 * 16_000 - 800, "{gated} of {} silent", out.len());
    }

    #[test]
    fn a_user_clearly_louder_than_the_echo_opens_the_gate_with_pre_roll() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::HalfDuplex));
        // Quiet echo (−40 dBFS reference), then a loud user from 1 s on.
        let out = drive(&mut p, &stats, 2.0, 330, |i| {
            if i >= 16_000 {
                ((i as f64 * 0.2).sin() * 10_000.0) as i16
            } else {
                0
            }
        });
        assert_eq!(stats.gate_openings.load(Ordering::Relaxed), 1);
        // Everything the user said arrives: the pre-roll covers the 150 ms it took to decide.
        let loud = out.iter().filter(|v| v.unsigned_abs() > 5_000).count();
        let said = (16_000..32_000)
            .filter(|&i| ((i as f64 * 0.2).sin() * 10_000.0).abs() > 5_000.0)
            .count();
        assert!(loud + 32 >= said, "{loud} loud samples sent, {said} spoken");
    }

    #[test]
    fn the_button_opens_the_gate_and_sends_the_pre_roll() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::HalfDuplex));
        // A user as loud as the reference: never enough to open the gate on their own.
        let user = |i: usize| ((i as f64 * 0.3).sin() * 8_000.0) as i16;
        let out = drive(&mut p, &stats, 1.0, 8000, user);
        assert_eq!(stats.gate_openings.load(Ordering::Relaxed), 0);
        assert!(out.iter().all(|&v| v == 0), "gated while the reply plays");
        p.open_gate();
        let mut more = Vec::new();
        let t = 100.0 + 1.0;
        p.reference(&block(t + 0.05, 8000));
        let m: Vec<i16> = (16_000..16_160).map(user).collect();
        p.capture(t, &m);
        p.process(t + 0.1, &mut more, &stats);
        // 500 ms of pre-roll, then the live frame(s).
        assert!(more.len() >= 8_000 + 160, "{}", more.len());
        assert!(
            more[..8_000].iter().any(|&v| v != 0),
            "pre-roll is the user"
        );
        assert_eq!(stats.gate_openings.load(Ordering::Relaxed), 0);
    }

    /// Like `drive`, with AEC on, a reply of `ref_secs` out of `secs` and a mic that hears it
    /// (20 dB down). Before capture frame `j`, `lost(j)` frames were lost (an xrun: the samples
    /// stand for a later moment), and the device reports them `late(j)` seconds later than they
    /// were captured. Returns the capture clock's start after each frame and the frames gated
    /// so far.
    fn drive_skewed(
        p: &mut EchoProcessor,
        stats: &EchoStats,
        secs: f64,
        plays: impl Fn(usize) -> bool,
        lost: impl Fn(usize) -> usize,
        late: impl Fn(usize) -> f64,
    ) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        // Noise at 8 kHz, interpolated: broadband and never periodic (AEC3 neither converges
        // on a tone nor finds one delay in a periodic signal).
        let noise = |i: u64| {
            let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
            x ^= x >> 29;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 32;
            (x % 20_001) as f64 / 10_000.0 - 1.0
        };
        let wave = |t: f64, a: f64| {
            let p = t * 8_000.0;
            let (i, f) = (p.floor() as u64, p.fract());
            ((noise(i) * (1.0 - f) + noise(i + 1) * f) * a) as i16
        };
        let mut k = 0usize;
        for j in 0..(secs * 100.0) as usize {
            // When this frame was really captured, in 10 ms steps.
            let at = j + lost(j);
            // The playback thread stays 50 ms ahead of what is heard.
            while k <= at + 5 {
                let mut samples = [0i16; REF_BLOCK];
                if plays(k) {
                    for (n, s) in samples.iter_mut().enumerate().take(240) {
                        *s = wave((k * 240 + n) as f64 / 24_000.0, 8000.0);
                    }
                }
                p.reference(&RefMsg::Audio {
                    t: 100.0 + k as f64 * 0.01,
                    rate_hz: 24_000,
                    len: 240,
                    samples,
                });
                k += 1;
            }
            let heard = plays(at);
            let m: Vec<i16> = (0..160)
                .map(|n| {
                    if heard {
                        wave((at * 160 + n) as f64 / 16_000.0, 800.0)
                    } else {
                        0
                    }
                })
                .collect();
            p.capture(100.0 + at as f64 * 0.01 + late(j), &m);
            p.process(100.0 + (at + 1) as f64 * 0.01, &mut out, stats);
            // Where the stream's sample clock puts the next sample (held frames included).
            let clock = p.cap_t0 + p.pending.len() as f64 / f64::from(INPUT_RATE_HZ);
            seen.push((clock, stats.gated_frames.load(Ordering::Relaxed)));
        }
        seen
    }

    #[test]
    fn a_drifting_capture_clock_is_corrected_in_the_pause_not_under_a_reply() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::Aec));
        // From 2 s on the device reports its samples 25 ms later: more than a slew, less than
        // what must be corrected at once.
        let late = |j| if j >= 200 { 0.025 } else { 0.0 };
        let seen = drive_skewed(&mut p, &stats, 6.0, |k| k < 400, |_| 0, late);
        let start = |j: usize| seen[j].0 - j as f64 * 0.01;
        // Under the reply (and its 300 ms tail) the clock stays put ...
        assert!(
            (start(420) - start(150)).abs() < 1e-6,
            "moved under the reply"
        );
        // ... and nothing shut the gate after the warm-up.
        assert_eq!(
            seen[420].1, seen[150].1,
            "no gating for a clock it left alone"
        );
        // In the pause it follows the device.
        assert!(
            start(590) - start(150) > 0.019,
            "{}",
            start(590) - start(150)
        );
    }

    #[test]
    fn after_a_correction_in_a_pause_the_next_reply_is_gated_until_aec3_has_converged_again() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::Aec));
        // A reply, a 2 s pause, a reply. The device reports 25 ms later from 2 s on: corrected
        // in the pause, where no echo is heard, but the second reply meets a moved reference.
        let late = |j| if j >= 200 { 0.025 } else { 0.0 };
        let seen = drive_skewed(
            &mut p,
            &stats,
            8.0,
            |k| k < 300 || (500..800).contains(&k),
            |_| 0,
            late,
        );
        let start = |j: usize| seen[j].0 - j as f64 * 0.01;
        assert!(start(480) - start(150) > 0.019, "corrected in the pause");
        let gated = |a: usize, b: usize| seen[b].1 - seen[a].1;
        assert_eq!(gated(150, 299), 0, "trusted before");
        assert_eq!(gated(340, 490), 0, "nothing to gate in the pause");
        // The first 1.5 s of the second reply gated (its reference leads by 40 ms), then
        // trusted again.
        let g = gated(490, 700);
        assert!((145..=160).contains(&g), "{g} frames gated");
        assert_eq!(gated(700, 790), 0, "trusted again");
        // The detector kept the room's ERL meanwhile, and the echo alone never opened it.
        assert_eq!(stats.gate_openings.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_capture_clock_jump_under_a_reply_shuts_the_gate_while_aec3_converges_again() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::Aec));
        // An xrun at 2 s: 200 ms of capture lost, the canceller's alignment moves.
        let lost = |j| if j >= 200 { 20 } else { 0 };
        let seen = drive_skewed(&mut p, &stats, 5.0, |k| k < 500, lost, |_| 0.0);
        let gated = |a: usize, b: usize| seen[b].1 - seen[a].1;
        assert_eq!(gated(150, 199), 0, "trusted before the jump");
        // Gated for `UNHEALTHY_S`.
        let g = gated(199, 499);
        assert!((190..=210).contains(&g), "{g} frames gated");
    }

    #[test]
    fn none_passes_the_mic_through_untouched() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::None));
        let mic = |i: usize| (i as i16).wrapping_mul(37);
        let out = drive(&mut p, &stats, 1.0, 8000, mic);
        assert_eq!(out.len(), 16_000);
        assert!(out.iter().enumerate().all(|(i, &v)| v == mic(i)));
    }

    #[test]
    fn aec_cancels_the_synthetic_room() {
        let r = synth::room(synth::RoomSpec {
            seconds: 8.0,
            rir_s: 0.12,
            double_talk: (7.0, 8.0),
            ..Default::default()
        });
        let (out, stats, _) = synth::run(&r, EchoMode::Aec);
        let erle = synth::erle_db(&r, &out, 2.0, 7.0);
        let none = synth::erle_db(&r, &r.mic, 2.0, 7.0);
        println!(
            "ERLE {erle:.1} dB; delay {:?} ms; {}",
            stats.delay_ms(),
            stats.summary()
        );
        assert!(none.abs() < 0.01);
        assert!(erle >= 25.0, "ERLE {erle:.1} dB");
        // The canceller sees the bulk delay plus our lead.
        let d = stats.delay_ms().unwrap_or(-1);
        assert!((80..=120).contains(&d), "delay {d} ms");
        assert_eq!(stats.gate_openings.load(Ordering::Relaxed), 0);
    }

    /// Between two replies AEC3 is skipped (no echo to cancel), and the next reply is
    /// cancelled from its first half second as well as without the skip: the canceller kept
    /// what it had learnt of the room.
    #[test]
    fn idle_between_replies_skips_aec3_and_keeps_its_state() {
        let r = synth::room(synth::RoomSpec {
            seconds: 14.0,
            pause: (5.0, 9.0),
            double_talk: (13.5, 14.0),
            seed: 7,
            ..Default::default()
        });
        let (out, stats, _) = synth::run(&r, EchoMode::Aec);
        let (out_before, _, _) =
            synth::run_with(&r, EchoMode::Aec, false, aec3::DelaySearch::DEFAULT);
        let idle = stats.aec_idle_frames.load(Ordering::Relaxed);
        // 4 s of pause less the 1 s wait: about 300 frames skipped.
        assert!((250..=400).contains(&idle), "{idle} frames skipped");
        let first = synth::erle_db(&r, &out, 9.0, 9.5);
        let first_before = synth::erle_db(&r, &out_before, 9.0, 9.5);
        println!(
            "ERLE right after the pause: {first:.1} dB (without the skip {first_before:.1} dB)"
        );
        assert!(first >= 25.0, "ERLE {first:.1} dB right after the pause");
        assert!(
            first >= first_before - 2.0,
            "{first:.1} dB vs {first_before:.1} dB without the skip"
        );
        // While skipped, the mic passes unchanged.
        let (a, b) = (6_500 * 16, 8_500 * 16);
        assert_eq!(&out[a..b], &r.mic[a..b]);
    }

    /// The delay search (`aec3::DelaySearch::DEFAULT`) spans about 300 ms of lag: the reference
    /// leads by `LEAD_S`, and a device whose delay reading misses 200 ms is cancelled as well
    /// as with WebRTC's wider search. 400 ms of lag is beyond ours and within WebRTC's: the
    /// price of the cheaper search, and the proof that its span is what the docs say
    /// (`calibrate::MAX_DELAY_MS` warns before it).
    #[test]
    fn delay_search_covers_a_device_delay_reading_200_ms_short() {
        for (bulk_s, within) in [(0.2, true), (0.36, false)] {
            let r = synth::room(synth::RoomSpec {
                seconds: 8.0,
                rir_s: 0.12,
                bulk_delay_s: bulk_s,
                double_talk: (7.5, 8.0),
                seed: 3,
                ..Default::default()
            });
            let (out, stats, _) = synth::run(&r, EchoMode::Aec);
            let erle = synth::erle_db(&r, &out, 2.0, 7.0);
            let (wide, _, _) = synth::run_with(&r, EchoMode::Aec, true, aec3::DelaySearch::WEBRTC);
            let wide = synth::erle_db(&r, &wide, 2.0, 7.0);
            println!(
                "bulk {bulk_s} s: ERLE {erle:.1} dB (WebRTC's search {wide:.1} dB), delay {:?} ms",
                stats.delay_ms()
            );
            assert!(
                wide >= 35.0,
                "bulk {bulk_s} s: WebRTC's search {wide:.1} dB"
            );
            if within {
                assert!(
                    erle >= wide - 1.0,
                    "bulk {bulk_s} s: {erle:.1} dB vs {wide:.1} dB"
                );
                let d = stats.delay_ms().unwrap_or(-1);
                assert!((200..=260).contains(&d), "delay {d} ms");
            } else {
                assert!(erle < 20.0, "bulk {bulk_s} s: {erle:.1} dB");
            }
        }
    }

    /// Until a reply has played, AEC3 has not run (the idle skip) and has nothing to report:
    /// the delay and ERLE stay "none" rather than its initial values.
    #[test]
    fn no_canceller_figures_before_anything_played() {
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::Aec));
        drive(&mut p, &stats, 3.0, 0, |i| ((i * 7) % 200) as i16 - 100);
        assert_eq!(stats.aec_frames.load(Ordering::Relaxed), 0);
        assert!(stats.aec_idle_frames.load(Ordering::Relaxed) >= 290);
        assert_eq!(stats.delay_ms(), None);
        assert_eq!(stats.erle_db(), None);
        // With a reply playing, there are.
        let stats = EchoStats::default();
        let mut p = EchoProcessor::new(settings(EchoMode::Aec));
        drive(&mut p, &stats, 2.0, 3000, |i| ((i * 7) % 200) as i16 - 100);
        assert!(stats.aec_frames.load(Ordering::Relaxed) > 0);
        assert!(stats.delay_ms().is_some());
    }
}
