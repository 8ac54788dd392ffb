//! Speaker playback thread: reply audio (S16_LE mono, 24 kHz unless the server says otherwise)
//! from a bounded queue into an ALSA PCM.
//!
//! Barge-in: every chunk carries the *generation* of the reply it belongs to. `discard()` raises
//! the current generation in a shared atomic first — so chunks still queued are skipped without
//! ever reaching ALSA — then asks the thread to `snd_pcm_drop` + `snd_pcm_prepare`, which throws
//! away what the hardware buffer still holds. The thread never sits in a device call it cannot
//! leave: it writes only what the buffer has room for, and waits for room in `poll()` on the
//! PCM's descriptors together with an eventfd that `discard()` signals, so a drop is issued as
//! soon as it is asked for, whether a write is waiting or not. The end of a reply is played out
//! the same way (waiting on the command queue while the buffer empties, then stopping the
//! stream), never with a blocking `snd_pcm_drain`, which a barge-in in a reply's last 200 ms
//! would otherwise have to wait out.
//!
//! The device always runs at [`OUTPUT_RATE_HZ`]: audio at another rate is resampled, never a
//! reason to reopen the device (a server alternating rates would otherwise cost seconds per
//! chunk), and a period is always about 20 ms, so a barge-in is never held up by a slow rate.
//! The queue is bounded in seconds of audio, whatever the size of the chunks.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::service::error_chain;

use super::echo::{now_s, ReferenceTx};
use super::{
    heard_at, is_device_gone, open_playback, reopen_delay, AudioError, AudioStats, FRAME_BYTES,
    OUTPUT_RATE_HZ,
};

/// Hardware buffer: enough slack for a busy Pi; discard empties it at once anyway.
const PLAYBACK_BUFFER_MS: u32 = 200;
/// Reply audio waiting to be played, at most: far above the multi-second bursts the server sends
/// faster than real time, and a few MB at any rate (a 512 MB board can afford it).
pub const MAX_QUEUED_MS: u64 = 60_000;
/// Commands in the queue, at most (each chunk is also counted against `MAX_QUEUED_MS`).
const QUEUE_CHUNKS: usize = 1024;
/// While a reply's end plays out, how often the thread looks whether the buffer is empty (a
/// command wakes it at once anyway).
const DRAIN_POLL: Duration = Duration::from_millis(5);
/// A reply's end is over after the buffer's length and this much more, whatever the device
/// says: a plugin that never reports an empty buffer must not keep the stream open.
const DRAIN_SLACK_MS: u64 = 500;

/// Wakes the playback thread out of `poll()`: `discard()` signals it after raising the
/// generation, so a thread waiting for room in the buffer drops at once.
struct Wake(OwnedFd);

impl Wake {
    fn new() -> std::io::Result<Wake> {
        // SAFETY: eventfd takes no pointers; a valid descriptor is owned from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        Ok(Wake(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn signal(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer; a full counter (EAGAIN) is already a wake.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    fn clear(&self) {
        let mut v = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; EAGAIN (not signalled) is fine.
        unsafe { libc::read(self.0.as_raw_fd(), v.as_mut_ptr().cast(), v.len()) };
    }

    fn pollfd(&self) -> libc::pollfd {
        libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }
    }
}

pub enum PlaybackCmd {
    Audio {
        gen: u64,
        rate_hz: u32,
        pcm: Vec<u8>,
    },
    EndOfTurn {
        gen: u64,
    },
    Discard,
}

/// The async side's handle. Cheap to call from the network task: nothing here blocks.
pub struct PlaybackHandle {
    tx: SyncSender<PlaybackCmd>,
    wake: Arc<Wake>,
    current_gen: Arc<AtomicU64>,
    volume: Arc<AtomicU8>,
    stats: Arc<AudioStats>,
    /// Milliseconds of audio queued and not yet taken by the thread.
    queued_ms: Arc<AtomicU64>,
    /// An overflow episode is logged once, at its start.
    overflowing: AtomicBool,
}

/// Milliseconds of S16_LE mono audio at `rate_hz` (rounded up: nothing is free).
fn audio_ms(bytes: usize, rate_hz: u32) -> u64 {
    let frames = (bytes / FRAME_BYTES) as u64;
    (frames * 1000).div_ceil(u64::from(rate_hz.max(1)))
}

impl PlaybackHandle {
    /// Queues reply audio of generation `gen`. Returns false (and counts the bytes as
    /// discarded) only if the queue is full: `MAX_QUEUED_MS` of audio waiting.
    ///
    /// Unlike the other bounded buffers, this one refuses the newest audio instead of dropping
    /// the oldest: the oldest is the sentence being spoken right now, and cutting it would jump
    /// the speech forward audibly with every chunk that arrives; refusing the tail ends the
    /// reply early, once.
    pub fn play(&self, gen: u64, rate_hz: u32, pcm: Vec<u8>) -> bool {
        let len = pcm.len() as u64;
        let ms = audio_ms(pcm.len(), rate_hz);
        let queued = self.queued_ms.fetch_add(ms, Ordering::SeqCst);
        let refused = if queued + ms > MAX_QUEUED_MS {
            true
        } else {
            self.tx
                .try_send(PlaybackCmd::Audio { gen, rate_hz, pcm })
                .is_err()
        };
        if refused {
            self.queued_ms.fetch_sub(ms, Ordering::SeqCst);
            AudioStats::add(&self.stats.discarded_bytes, len);
            if !self.overflowing.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "playback queue full ({} s of reply audio waiting): dropping reply audio until it drains",
                    MAX_QUEUED_MS / 1000
                );
            }
            return false;
        }
        self.overflowing.store(false, Ordering::Relaxed);
        true
    }

    /// Milliseconds of reply audio waiting in the queue.
    pub fn queued_ms(&self) -> u64 {
        self.queued_ms.load(Ordering::SeqCst)
    }

    /// The reply of generation `gen` is complete: play out what is queued.
    pub fn end_of_turn(&self, gen: u64) {
        let _ = self.tx.try_send(PlaybackCmd::EndOfTurn { gen });
    }

    /// Software gain in percent (0..=100), applied to every sample written from now on: many
    /// USB speakers and HATs have no usable hardware mixer.
    pub fn set_volume(&self, percent: u8) {
        self.volume.store(percent.min(100), Ordering::Relaxed);
    }

    pub fn volume(&self) -> u8 {
        self.volume.load(Ordering::Relaxed)
    }

    /// Stops playback at once and refuses every chunk older than `new_gen`.
    pub fn discard(&self, new_gen: u64) {
        self.current_gen.fetch_max(new_gen, Ordering::SeqCst);
        // A thread waiting for room in the buffer sees the new generation at once and drops.
        self.wake.signal();
        // If the queue is full the atomic alone still stops playback at the thread's next look.
        if let Err(TrySendError::Full(_)) = self.tx.try_send(PlaybackCmd::Discard) {
            log::debug!("playback queue full; discard relies on the generation check");
        }
    }
}

/// Starts the playback thread; it ends when the handle is dropped or `stop` is set.
///
/// With `reference`, every sample written to ALSA is also sent to the capture thread's echo
/// canceller, stamped with when it will be heard; a drop tells it what never played.
pub fn spawn(
    device: String,
    volume_percent: u8,
    stop: Arc<AtomicBool>,
    stats: Arc<AudioStats>,
    reference: Option<ReferenceTx>,
) -> std::io::Result<(PlaybackHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
    let current_gen = Arc::new(AtomicU64::new(0));
    let queued_ms = Arc::new(AtomicU64::new(0));
    let volume = Arc::new(AtomicU8::new(volume_percent.min(100)));
    let wake = Arc::new(Wake::new()?);
    let mut player = Player {
        wake: wake.clone(),
        draining: None,
        fds: Vec::with_capacity(4),
        device,
        pcm: None,
        failures: 0,
        retry_at: None,
        current_gen: current_gen.clone(),
        volume: volume.clone(),
        stats: stats.clone(),
        samples: Vec::new(),
        resampled: Vec::new(),
        reference,
        queued_ms: queued_ms.clone(),
    };
    let join = std::thread::Builder::new()
        .name("alsa-playback".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let wait = if player.draining.is_some() {
                    DRAIN_POLL
                } else {
                    Duration::from_millis(100)
                };
                match rx.recv_timeout(wait) {
                    Ok(cmd) => player.handle(cmd),
                    Err(RecvTimeoutError::Timeout) => player.check_drained(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            player.close();
        })?;
    Ok((
        PlaybackHandle {
            tx,
            wake,
            current_gen,
            volume,
            stats,
            queued_ms,
            overflowing: AtomicBool::new(false),
        },
        join,
    ))
}

struct Open {
    pcm: alsa::PCM,
    rate_hz: u32,
    period: usize,
    buffer: usize,
}

struct Player {
    wake: Arc<Wake>,
    /// A reply's end is playing out: stop the stream once the buffer is empty, or at this
    /// deadline (the buffer's length and then some) if the device never says so.
    draining: Option<Instant>,
    /// Reused `poll()` set: the eventfd, then the PCM's descriptors.
    fds: Vec<libc::pollfd>,
    device: String,
    pcm: Option<Open>,
    failures: u32,
    retry_at: Option<Instant>,
    current_gen: Arc<AtomicU64>,
    volume: Arc<AtomicU8>,
    stats: Arc<AudioStats>,
    /// Reused conversion buffers: bytes → i16 (and → the device rate) without a fresh
    /// allocation per chunk.
    samples: Vec<i16>,
    resampled: Vec<i16>,
    reference: Option<ReferenceTx>,
    queued_ms: Arc<AtomicU64>,
}

impl Player {
    fn handle(&mut self, cmd: PlaybackCmd) {
        match cmd {
            PlaybackCmd::Audio { gen, rate_hz, pcm } => {
                let ms = audio_ms(pcm.len(), rate_hz);
                let _ = self
                    .queued_ms
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                        Some(q.saturating_sub(ms))
                    });
                self.write(gen, rate_hz, &pcm)
            }
            PlaybackCmd::EndOfTurn { gen } => {
                if gen >= self.current_gen.load(Ordering::SeqCst) && self.pcm.is_some() {
                    // Play out the tail (the loop watches the buffer empty), then stop the
                    // stream so the next reply starts without an xrun.
                    let buffer_ms = self
                        .pcm
                        .as_ref()
                        .map_or(0, |o| o.buffer as u64 * 1000 / u64::from(o.rate_hz.max(1)));
                    self.draining =
                        Some(Instant::now() + Duration::from_millis(buffer_ms + DRAIN_SLACK_MS));
                    self.check_drained();
                }
            }
            PlaybackCmd::Discard => self.drop_hw(),
        }
    }

    /// While draining: once nothing written is left to play, stop the stream and prepare it
    /// for the next reply (what `snd_pcm_drain` would do, without blocking the thread).
    fn check_drained(&mut self) {
        let Some(deadline) = self.draining else {
            return;
        };
        let Some(o) = &self.pcm else {
            self.draining = None;
            return;
        };
        use alsa::pcm::State;
        let done = match o.pcm.state() {
            State::Running => o.pcm.delay().map_or(true, |d| d <= 0),
            // A tail shorter than the start threshold has not started yet: start it.
            State::Prepared => match o.pcm.avail_update() {
                Ok(a) if (a.max(0) as usize) < o.buffer => o.pcm.start().is_err(),
                _ => true,
            },
            _ => true,
        };
        if done || Instant::now() >= deadline {
            self.draining = None;
            if o.pcm.drop().is_err() || o.pcm.prepare().is_err() {
                self.lost("stopping after the reply failed");
            }
        }
    }

    /// Waits until the buffer has room for `frames` or `gen` is discarded (true), in `poll()`
    /// on the PCM's descriptors and the discard eventfd. False: write now (an error such as an
    /// xrun is left to the write, which recovers from it).
    fn wait_room(&mut self, frames: usize, gen: u64) -> bool {
        use alsa::poll::Descriptors;
        let Some(o) = &self.pcm else {
            return false;
        };
        loop {
            if gen < self.current_gen.load(Ordering::SeqCst) {
                return true;
            }
            match o.pcm.avail_update() {
                Ok(a) if a >= 0 && a as usize >= frames => return false,
                Ok(_) => {}
                Err(_) => return false,
            }
            if !matches!(o.pcm.state(), alsa::pcm::State::Running) {
                return false;
            }
            let n = o.pcm.count();
            self.fds.clear();
            self.fds.push(self.wake.pollfd());
            self.fds.resize(
                1 + n,
                libc::pollfd {
                    fd: -1,
                    events: 0,
                    revents: 0,
                },
            );
            match o.pcm.fill(&mut self.fds[1..]) {
                Ok(k) => self.fds.truncate(1 + k),
                Err(_) => return false,
            }
            // Bounded: a plugin whose descriptor never fires still gets looked at again.
            if alsa::poll::poll(&mut self.fds, 100).is_err() {
                return false;
            }
            if self.fds[0].revents != 0 {
                self.wake.clear();
            }
        }
    }

    fn drop_hw(&mut self) {
        self.draining = None;
        self.wake.clear();
        if let Some(o) = &self.pcm {
            AudioStats::add(&self.stats.discards, 1);
            if o.pcm.drop().is_err() || o.pcm.prepare().is_err() {
                // `lost` tells the canceller too.
                self.lost("drop failed");
            } else if let Some(r) = &mut self.reference {
                // What was still queued never plays: the canceller must not expect its echo.
                r.dropped(now_s());
            }
        }
    }

    fn stale(&self, gen: u64) -> bool {
        gen < self.current_gen.load(Ordering::SeqCst)
    }

    fn write(&mut self, gen: u64, rate_hz: u32, bytes: &[u8]) {
        if self.stale(gen) || !self.ensure_open() {
            AudioStats::add(&self.stats.discarded_bytes, bytes.len() as u64);
            return;
        }
        // More audio: whatever was draining goes on playing with it.
        self.draining = None;
        self.samples.clear();
        let gain = i32::from(self.volume.load(Ordering::Relaxed));
        self.samples
            .extend(bytes.chunks_exact(FRAME_BYTES).map(|b| {
                let s = i16::from_le_bytes([b[0], b[1]]);
                if gain >= 100 {
                    s
                } else {
                    // |s * gain / 100| <= |s|, so this always fits an i16.
                    (i32::from(s) * gain / 100) as i16
                }
            }));
        if rate_hz != OUTPUT_RATE_HZ {
            resample_linear(&self.samples, rate_hz, OUTPUT_RATE_HZ, &mut self.resampled);
            std::mem::swap(&mut self.samples, &mut self.resampled);
        }
        let mut done = 0;
        let total = self.samples.len();
        while done < total {
            if self.stale(gen) {
                AudioStats::add(
                    &self.stats.discarded_bytes,
                    ((total - done) * FRAME_BYTES) as u64,
                );
                self.drop_hw();
                return;
            }
            let Some(o) = &self.pcm else {
                AudioStats::add(
                    &self.stats.discarded_bytes,
                    ((total - done) * FRAME_BYTES) as u64,
                );
                return;
            };
            let end = (done + o.period).min(total);
            if self.wait_room(end - done, gen) {
                continue; // discarded while waiting: the check at the top drops
            }
            let Some(o) = &self.pcm else {
                continue;
            };
            let result = o
                .pcm
                .io_i16()
                .and_then(|io| io.writei(&self.samples[done..end]));
            match result {
                Ok(n) => {
                    if let Some(r) = &mut self.reference {
                        let t = heard_at(&o.pcm, n, o.rate_hz);
                        r.played(t, o.rate_hz, &self.samples[done..done + n]);
                    }
                    done += n;
                    AudioStats::add(&self.stats.played_bytes, (n * FRAME_BYTES) as u64);
                }
                Err(e) if is_device_gone(e.errno()) => {
                    AudioStats::add(
                        &self.stats.discarded_bytes,
                        ((total - done) * FRAME_BYTES) as u64,
                    );
                    self.lost(&e.to_string());
                    return;
                }
                Err(e) => {
                    AudioStats::add(&self.stats.playback_xruns, 1);
                    log::warn!(
                        "playback xrun on `{}` ({e}); recovering (xruns so far: {})",
                        self.device,
                        AudioStats::get(&self.stats.playback_xruns)
                    );
                    if o.pcm.try_recover(e, true).is_err() {
                        self.lost("recovery failed");
                        return;
                    }
                }
            }
        }
    }

    /// Opens the PCM at `OUTPUT_RATE_HZ`; false while a reopen backoff is running.
    fn ensure_open(&mut self) -> bool {
        if self.pcm.is_some() {
            return true;
        }
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return false;
            }
        }
        match self.open(OUTPUT_RATE_HZ) {
            Ok(o) => {
                if self.failures > 0 {
                    log::info!("playback device `{}` is back", self.device);
                }
                self.failures = 0;
                self.retry_at = None;
                self.pcm = Some(o);
                true
            }
            Err(e) => {
                if self.failures == 0 {
                    log::error!("{}; reply audio is dropped until it opens", error_chain(&e));
                }
                self.retry_at = Some(Instant::now() + reopen_delay(self.failures));
                self.failures = self.failures.saturating_add(1);
                false
            }
        }
    }

    fn open(&self, rate_hz: u32) -> Result<Open, AudioError> {
        let dev = self.device.as_str();
        let (pcm, period, buffer) = open_playback(dev, rate_hz, PLAYBACK_BUFFER_MS)?;
        log::info!(
            "playing to `{dev}`: {rate_hz} Hz S16_LE mono, period {period} frames, buffer {buffer} frames"
        );
        Ok(Open {
            pcm,
            rate_hz,
            period: period.max(1),
            buffer,
        })
    }

    fn lost(&mut self, why: &str) {
        if let Some(r) = &mut self.reference {
            r.dropped(now_s());
        }
        log::error!(
            "playback device `{}` lost ({why}); reopening with backoff",
            self.device
        );
        self.pcm = None;
        self.retry_at = Some(Instant::now() + reopen_delay(self.failures));
        self.failures = self.failures.saturating_add(1);
    }

    fn close(&mut self) {
        if let Some(o) = self.pcm.take() {
            let _ = o.pcm.drain();
        }
    }
}

/// Linear interpolation from `from` Hz to `to` Hz. Plain, but speech from a server that picked
/// an odd rate stays intelligible, and it costs microseconds per chunk.
pub fn resample_linear(input: &[i16], from: u32, to: u32, out: &mut Vec<i16>) {
    out.clear();
    if input.is_empty() || from == 0 || to == 0 {
        return;
    }
    let n = input.len() as u64;
    let len = (n * u64::from(to)).div_ceil(u64::from(from));
    out.reserve(len as usize);
    for j in 0..len {
        // Position in the input, in 1/to steps: exact integers, no drift over long chunks.
        let num = j * u64::from(from);
        let i = (num / u64::from(to)) as usize;
        let frac = (num % u64::from(to)) as i64;
        let a = i64::from(input[i.min(input.len() - 1)]);
        let b = i64::from(input[(i + 1).min(input.len() - 1)]);
        out.push((a + (b - a) * frac / i64::from(to)) as i16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_duration_and_shape() {
        let ramp: Vec<i16> = (0..160).map(|i| i * 100).collect(); // 10 ms at 16 kHz
        let mut out = Vec::new();
        resample_linear(&ramp, 16_000, 24_000, &mut out);
        assert_eq!(out.len(), 240);
        assert_eq!(out[0], 0);
        assert_eq!(
            out[3], 200,
            "every third output sample lands on an input sample"
        );
        assert_eq!(out[1], 66);
        resample_linear(&ramp, 48_000, 24_000, &mut out);
        assert_eq!(out.len(), 80);
        assert_eq!(out[1], 200);
        resample_linear(&ramp, 24_000, 24_000, &mut out);
        assert_eq!(out, ramp);
        resample_linear(&[], 8_000, 24_000, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn queued_audio_is_counted_in_milliseconds() {
        assert_eq!(audio_ms(48_000, 24_000), 1_000);
        assert_eq!(audio_ms(32_000, 16_000), 1_000);
        assert_eq!(audio_ms(2, 48_000), 1, "rounded up");
    }
}
