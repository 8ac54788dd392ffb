//! ALSA edge: a capture thread (mic → 16 kHz S16_LE mono chunks) and a playback thread
//! (24 kHz S16_LE mono replies, with instant discard on barge-in), plus device listing.
//!
//! ALSA calls block and `PCM` is `!Sync`, so each direction owns one OS thread and talks to the
//! async side through channels: capture hands out `PcmChunk`s (drop-newest and counted when the
//! consumer falls behind), playback takes `PlaybackCmd`s from a bounded queue.
//! Nothing above this module touches a PCM handle.

pub mod calibrate;
pub mod capture;
pub mod check;
pub mod clean;
pub mod devices;
pub mod echo;
pub mod playback;
pub mod vad;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The Live API's native input format: 16 kHz, S16_LE, mono.
pub const INPUT_RATE_HZ: u32 = 16_000;
/// The Live API's output rate when the mime type names none.
pub const OUTPUT_RATE_HZ: u32 = 24_000;
/// ALSA period: short enough that a discard takes effect within one period.
pub const PERIOD_MS: u32 = 20;
/// Bytes per frame of S16_LE mono.
pub const FRAME_BYTES: usize = 2;

/// One chunk of microphone audio, S16_LE mono at `INPUT_RATE_HZ`.
pub type PcmChunk = Vec<u8>;

/// ALSA errno values that mean the device itself went away (USB unplugged, driver unbound):
/// `snd_pcm_recover` cannot fix these, the PCM must be closed and reopened.
pub fn is_device_gone(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENODEV | libc::EBADFD | libc::ENXIO | libc::EIO | libc::ESHUTDOWN
    )
}

/// Root-mean-square level of S16_LE mono PCM (0.0 for an empty slice).
pub fn rms_s16le(pcm: &[u8]) -> f64 {
    let n = pcm.len() / FRAME_BYTES;
    if n == 0 {
        return 0.0;
    }
    let sum: f64 = pcm
        .chunks_exact(FRAME_BYTES)
        .map(|b| {
            let x = f64::from(i16::from_le_bytes([b[0], b[1]]));
            x * x
        })
        .sum();
    (sum / n as f64).sqrt()
}

/// Root-mean-square level of 16-bit samples (0.0 for an empty slice).
pub fn rms_i16(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let sum: f64 = s.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / s.len() as f64).sqrt()
}

/// An amplitude (RMS or peak) of 16-bit audio in dBFS, full scale 32768; silence is reported
/// as -120 dBFS rather than minus infinity.
pub fn dbfs(amplitude: f64) -> f64 {
    if amplitude <= 0.0 {
        -120.0
    } else {
        (20.0 * (amplitude / 32768.0).log10()).max(-120.0)
    }
}

/// When something last happened (the speaker played, the user spoke), shared between threads
/// without a lock.
#[derive(Debug)]
pub struct Recent {
    start: std::time::Instant,
    /// Milliseconds since `start`, plus one; 0 = never.
    last_ms: AtomicU64,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            start: std::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Recent {
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64 + 1;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// It happened within the last `window`.
    pub fn within(&self, window: Duration) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        last > 0 && self.start.elapsed().as_millis() as u64 <= last + window.as_millis() as u64
    }
}

/// Which way a PCM goes, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Capture,
    Playback,
}

impl std::fmt::Display for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad` so that width specifiers ("{dir:<8}") line listings up.
        f.pad(match self {
            Dir::Capture => "capture",
            Dir::Playback => "playback",
        })
    }
}

impl From<Dir> for alsa::Direction {
    fn from(d: Dir) -> Self {
        match d {
            Dir::Capture => alsa::Direction::Capture,
            Dir::Playback => alsa::Direction::Playback,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot open ALSA {dir} device `{device}` (see `gemlive list-devices`)")]
    Open {
        device: String,
        dir: Dir,
        #[source]
        source: alsa::Error,
    },
    #[error("ALSA {dir} device `{device}` refused {what} (try a `plughw:` or `default` device; `gemlive list-devices` shows what each accepts)")]
    Params {
        device: String,
        dir: Dir,
        what: String,
        #[source]
        source: alsa::Error,
    },
    #[error("ALSA {dir} device `{device}` runs at {got} Hz, not {wanted} Hz (use a `plughw:` or `default` device, which converts)")]
    Rate {
        device: String,
        dir: Dir,
        wanted: u32,
        got: u32,
    },
    #[error("ALSA {dir} device `{device}` went away")]
    DeviceGone {
        device: String,
        dir: Dir,
        #[source]
        source: alsa::Error,
    },
    #[error("ALSA {dir} I/O error on `{device}`")]
    Io {
        device: String,
        dir: Dir,
        #[source]
        source: alsa::Error,
    },
}

/// The PCM name gemlive opens for a configured device. ALSA's `dsnoop` and `dmix` (the way to
/// share a card with another program) run at the card's own rate, format and channels and
/// refuse 16 kHz S16_LE mono, so they are opened through `plug`, which converts: a
/// `dsnoop:CARD=X,DEV=0` that would never start becomes `plug:'dsnoop:CARD=X,DEV=0'`.
pub fn alsa_name(device: &str) -> std::borrow::Cow<'_, str> {
    let kind = device.split(':').next().unwrap_or("").trim();
    if kind.eq_ignore_ascii_case("dsnoop") || kind.eq_ignore_ascii_case("dmix") {
        std::borrow::Cow::Owned(format!("plug:'{}'", device.trim()))
    } else {
        std::borrow::Cow::Borrowed(device)
    }
}

/// Opens `device` and configures it explicitly: S16_LE, mono, `rate_hz`, 20 ms periods.
/// `snd_pcm_set_params` is avoided on purpose: it sets a capture start threshold of a whole
/// buffer, which makes small reads fail with EIO on real drivers (`docs/design.md`, "Capture
/// start threshold").
pub(crate) fn open_pcm(
    device: &str,
    dir: Dir,
    rate_hz: u32,
    buffer_ms: u32,
) -> Result<alsa::PCM, AudioError> {
    use alsa::pcm::{Access, Format, HwParams};
    use alsa::ValueOr;
    let name = alsa_name(device);
    if name != device {
        log::info!("opening {device} as {name}: plug converts to the card's own format and rate");
    }
    let pcm = alsa::PCM::new(&name, dir.into(), false).map_err(|source| AudioError::Open {
        device: name.to_string(),
        dir,
        source,
    })?;
    let refused = |what: &str| {
        let device = device.to_string();
        let what = what.to_string();
        move |source| AudioError::Params {
            device,
            dir,
            what,
            source,
        }
    };
    {
        let hwp = HwParams::any(&pcm).map_err(refused("any hardware parameters"))?;
        hwp.set_access(Access::RWInterleaved)
            .map_err(refused("interleaved access"))?;
        hwp.set_format(Format::s16())
            .map_err(refused("format S16_LE"))?;
        hwp.set_channels(1).map_err(refused("1 channel (mono)"))?;
        let got = hwp
            .set_rate_near(rate_hz, ValueOr::Nearest)
            .map_err(refused(&format!("rate {rate_hz} Hz")))?;
        if got != rate_hz {
            return Err(AudioError::Rate {
                device: device.to_string(),
                dir,
                wanted: rate_hz,
                got,
            });
        }
        hwp.set_period_time_near(PERIOD_MS * 1000, ValueOr::Nearest)
            .map_err(refused("a 20 ms period"))?;
        hwp.set_buffer_time_near(buffer_ms * 1000, ValueOr::Nearest)
            .map_err(refused("the buffer size"))?;
        pcm.hw_params(&hwp)
            .map_err(refused("these hardware parameters"))?;
    }
    Ok(pcm)
}

/// A capture PCM as every mic path opens it (the daemon, test-audio, calibrate-echo): S16_LE
/// mono at 16 kHz, started on the first read (never waiting for a full buffer: that is the EIO
/// trap in `docs/design.md`, "Capture start threshold"), and already started. Returns the PCM
/// and the negotiated period and buffer, in frames.
pub(crate) fn open_capture(
    device: &str,
    buffer_ms: u32,
) -> Result<(alsa::PCM, usize, usize), AudioError> {
    let pcm = open_pcm(device, Dir::Capture, INPUT_RATE_HZ, buffer_ms)?;
    let io_err = |source| AudioError::Io {
        device: device.to_string(),
        dir: Dir::Capture,
        source,
    };
    let (period, buffer) = negotiated(&pcm).map_err(io_err)?;
    {
        let sw = pcm.sw_params_current().map_err(io_err)?;
        sw.set_start_threshold(1).map_err(io_err)?;
        sw.set_avail_min(period.max(1) as alsa::pcm::Frames)
            .map_err(io_err)?;
        pcm.sw_params(&sw).map_err(io_err)?;
    }
    pcm.start().map_err(io_err)?;
    Ok((pcm, period.max(1), buffer))
}

/// When the first of the `n` frames just read was captured (monotonic s), and now: what is
/// still queued in the device (its delay) was captured after them.
pub(crate) fn captured_at(pcm: &alsa::PCM, n: usize) -> (f64, f64) {
    let now = echo::now_s();
    let queued = pcm.delay().unwrap_or(0).max(0) as f64;
    (now - (queued + n as f64) / f64::from(INPUT_RATE_HZ), now)
}

/// When the first of the `n` frames just written at `rate_hz` will be heard (monotonic s): the
/// delay counts what is queued including these frames, so they play after the rest.
pub(crate) fn heard_at(pcm: &alsa::PCM, n: usize, rate_hz: u32) -> f64 {
    let queued = pcm.delay().unwrap_or(n as alsa::pcm::Frames).max(0) as f64;
    echo::now_s() + (queued - n as f64).max(0.0) / f64::from(rate_hz)
}

/// A playback PCM as every speaker path opens it (replies, test-audio, calibrate-echo): S16_LE
/// mono at `rate_hz` with a short pre-roll of 3 periods before the DAC starts (low latency, no
/// stutter). Returns the PCM and the negotiated period and buffer, in frames.
pub(crate) fn open_playback(
    device: &str,
    rate_hz: u32,
    buffer_ms: u32,
) -> Result<(alsa::PCM, usize, usize), AudioError> {
    let pcm = open_pcm(device, Dir::Playback, rate_hz, buffer_ms)?;
    let io_err = |source| AudioError::Io {
        device: device.to_string(),
        dir: Dir::Playback,
        source,
    };
    let (period, buffer) = negotiated(&pcm).map_err(io_err)?;
    {
        let sw = pcm.sw_params_current().map_err(io_err)?;
        sw.set_start_threshold((3 * period).min(buffer) as alsa::pcm::Frames)
            .map_err(io_err)?;
        sw.set_avail_min(period.max(1) as alsa::pcm::Frames)
            .map_err(io_err)?;
        pcm.sw_params(&sw).map_err(io_err)?;
    }
    Ok((pcm, period.max(1), buffer))
}

/// Period and buffer size the device really chose ("don't assume we got what we wanted").
pub(crate) fn negotiated(pcm: &alsa::PCM) -> Result<(usize, usize), alsa::Error> {
    let hw = pcm.hw_params_current()?;
    Ok((
        hw.get_period_size()? as usize,
        hw.get_buffer_size()? as usize,
    ))
}

/// Capped exponential backoff for reopening a lost device: 0.5 s, 1 s, 2 s … 30 s.
pub(crate) fn reopen_delay(failures: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << failures.min(6));
    Duration::from_millis(ms.min(30_000))
}

/// Counters shared between the audio threads and the daemon (status and logs).
#[derive(Debug, Default)]
pub struct AudioStats {
    pub captured_bytes: AtomicU64,
    pub capture_dropped_bytes: AtomicU64,
    pub capture_xruns: AtomicU64,
    pub played_bytes: AtomicU64,
    pub discarded_bytes: AtomicU64,
    pub playback_xruns: AtomicU64,
    pub discards: AtomicU64,
    /// Echo canceller and gate telemetry; `gate_openings` is the local barge-in signal.
    pub echo: echo::EchoStats,
}

impl AudioStats {
    pub fn get(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }

    pub(crate) fn add(v: &AtomicU64, n: u64) {
        v.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_card_devices_are_opened_through_plug() {
        assert_eq!(
            alsa_name("dsnoop:CARD=X,DEV=0"),
            "plug:'dsnoop:CARD=X,DEV=0'"
        );
        assert_eq!(
            alsa_name("dmix:CARD=seeed2micvoicec,DEV=0"),
            "plug:'dmix:CARD=seeed2micvoicec,DEV=0'"
        );
        assert_eq!(alsa_name("DSNOOP"), "plug:'DSNOOP'");
        for same in [
            "plughw:CARD=X,DEV=0",
            "plug:'dsnoop:CARD=X,DEV=0'",
            "default",
            "hw:1,0",
        ] {
            assert_eq!(alsa_name(same), same);
        }
    }

    #[test]
    fn reopen_backoff_is_capped() {
        assert_eq!(reopen_delay(0), Duration::from_millis(500));
        assert_eq!(reopen_delay(1), Duration::from_secs(1));
        assert_eq!(reopen_delay(5), Duration::from_secs(16));
        assert_eq!(reopen_delay(6), Duration::from_secs(30));
        assert_eq!(reopen_delay(60), Duration::from_secs(30));
    }

    #[test]
    fn rms_and_recent() {
        let pcm: Vec<u8> = [300i16, -300, 300, -300]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        assert!((rms_s16le(&pcm) - 300.0).abs() < 1e-9);
        assert_eq!(rms_s16le(&[]), 0.0);
        let r = Recent::default();
        assert!(!r.within(Duration::from_secs(10)), "never happened");
        r.touch();
        assert!(r.within(Duration::from_secs(10)));
    }

    #[test]
    fn device_gone_errnos() {
        assert!(is_device_gone(libc::ENODEV));
        assert!(!is_device_gone(libc::EPIPE));
    }
}

/// What keeps the speaker out of the microphone. TOML: `"aec"`, `"half_duplex"`, `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EchoMode {
    /// In-process echo cancellation (WebRTC AEC3 via `sonora`) with the exact playback stream
    /// as the reference; the half-duplex gate covers its warm-up and unhealthy spells.
    #[default]
    Aec,
    /// The microphone is always sent (a headset, or hardware echo cancellation).
    None,
    /// The microphone is muted (silence is sent) while a reply plays and for `echo_tail_ms`
    /// after, so a loudspeaker cannot make the model interrupt itself; the button still
    /// interrupts.
    HalfDuplex,
}

impl EchoMode {
    pub const ALL: [EchoMode; 3] = [Self::Aec, Self::HalfDuplex, Self::None];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aec => "aec",
            Self::None => "none",
            Self::HalfDuplex => "half_duplex",
        }
    }
}
