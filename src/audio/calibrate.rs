//! `gemlive calibrate-echo`: plays a short test signal through the configured speaker, records
//! the configured microphone, and reports what decides whether echo cancellation can work:
//! the acoustic delay (and whether it is stable), the echo level, the ERLE the canceller
//! reaches, and the things that defeat it (`docs/aec.md`, "What defeats it").
//!
//! It runs the daemon's own paths: playback stamps what it writes with when it will be heard,
//! capture stamps what it reads with when it was captured, and the canceller is the same
//! [`EchoProcessor`]. The delay is measured twice, by cross-correlating two noise bursts on
//! that common timeline, and compared with the canceller's own estimate.

use std::time::{Duration, Instant};

use super::echo::synth::{room, RoomSpec};
use super::echo::{reference_channel, EchoProcessor, EchoSettings, EchoStats, ReferenceTx, LEAD_S};
use super::{
    captured_at, dbfs, heard_at, open_capture, open_playback, rms_i16, AudioError, Dir,
    INPUT_RATE_HZ, OUTPUT_RATE_HZ,
};
use crate::audio::EchoMode;

/// Delays above this leave too little room in the canceller's delay search, which spans about
/// 300 ms of lag including our 40 ms lead (`echo::aec3::DelaySearch::DEFAULT`; `docs/aec.md`,
/// "Timing rule").
pub const MAX_DELAY_MS: f64 = 230.0;
/// The two burst measurements may differ by this much before the delay counts as unstable.
const UNSTABLE_MS: f64 = 10.0;
const BURST_S: f64 = 0.3;
const GAP_S: f64 = 0.5;
const SPEECH_S: f64 = 3.0;
/// Longest delay searched for.
const SEARCH_S: f64 = 0.6;

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("the {0} thread failed")]
    Thread(&'static str),
}

/// What the measurement found.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Speaker-to-mic delay from each noise burst, ms (`None`: no echo found).
    pub burst_delays_ms: [Option<f64>; 2],
    /// The canceller's delay estimate, less our reference lead, ms.
    pub aec_delay_ms: Option<f64>,
    /// Echo level at the mic while the test speech plays, dBFS.
    pub echo_dbfs: f64,
    /// The test speech as played, dBFS.
    pub played_dbfs: f64,
    /// Mic energy over canceller output energy over the converged end of the speech, dB.
    pub erle_db: Option<f64>,
    /// Fraction of mic samples at full scale.
    pub clipped: f64,
    pub capture_card: Option<String>,
    pub playback_card: Option<String>,
    /// Mixer controls on the capture card that look like automatic gain control and are on.
    pub agc_controls: Vec<String>,
}

impl Calibration {
    /// The delay to report: the mean of the bursts that found one.
    pub fn delay_ms(&self) -> Option<f64> {
        let v: Vec<f64> = self.burst_delays_ms.iter().flatten().copied().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// What defeats echo cancellation here, in words.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.echo_dbfs < -60.0 {
            w.push(format!(
                "the mic hardly hears the speaker ({:.0} dBFS): is the speaker on and loud enough, the mic unmuted, and are these the devices in the room?",
                self.echo_dbfs
            ));
        }
        if let Some(d) = self.delay_ms() {
            if d > MAX_DELAY_MS {
                w.push(format!(
                    "delay {d:.0} ms is over {MAX_DELAY_MS:.0} ms: the canceller fails beyond ~260 ms; use smaller buffers or the same card for mic and speaker"
                ));
            }
        }
        if let [Some(a), Some(b)] = self.burst_delays_ms {
            if (a - b).abs() > UNSTABLE_MS {
                w.push(format!(
                    "the delay is unstable ({a:.0} ms, then {b:.0} ms): mic and speaker clocks drift or a device drops audio"
                ));
            }
        }
        if let (Some(c), Some(p)) = (&self.capture_card, &self.playback_card) {
            if c != p {
                w.push(format!(
                    "mic (card {c}) and speaker (card {p}) are on different cards: their clocks drift apart; one card for both is better"
                ));
            }
        }
        if self.echo_dbfs > self.played_dbfs - 3.0 {
            w.push(format!(
                "the mic hears the speaker about as loud as it plays ({:.0} dBFS at the mic): the half-duplex gate assumes the echo is quieter than the stream and could open on it; lower the mic gain or the speaker volume",
                self.echo_dbfs
            ));
        }
        if self.clipped > 0.001 {
            w.push(format!(
                "the mic clips ({:.1} % of samples at full scale): lower the mic gain or the speaker volume; clipped echo cannot be cancelled",
                self.clipped * 100.0
            ));
        }
        for c in &self.agc_controls {
            w.push(format!(
                "mixer control `{c}` (automatic gain) is on: it changes the echo path all the time; turn it off with alsamixer"
            ));
        }
        if let Some(e) = self.erle_db {
            if e < 20.0 && self.echo_dbfs >= -60.0 {
                w.push(format!(
                    "the canceller removed only {e:.0} dB of echo: expect the half-duplex gate to take over often"
                ));
            }
        }
        w
    }
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| {
            v.map(|d| format!("{d:.1} ms"))
                .unwrap_or_else(|| "not found".into())
        };
        writeln!(f, "acoustic delay: {}", ms(self.delay_ms()))?;
        writeln!(
            f,
            "  noise bursts: {}, {}; canceller's estimate: {}",
            ms(self.burst_delays_ms[0]),
            ms(self.burst_delays_ms[1]),
            ms(self.aec_delay_ms)
        )?;
        writeln!(
            f,
            "echo level: {:.1} dBFS at the mic ({:.1} dB below the test signal as played)",
            self.echo_dbfs,
            self.played_dbfs - self.echo_dbfs
        )?;
        match self.erle_db {
            Some(e) => writeln!(f, "ERLE: {e:.1} dB")?,
            None => writeln!(f, "ERLE: not measured")?,
        }
        let warnings = self.warnings();
        if warnings.is_empty() {
            writeln!(f, "no problems found: echo = \"aec\" should work here")?;
        }
        for w in warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// The test signal at 24 kHz: burst, gap, speech-like far end, gap, burst, gap. Returns it
/// and where (in seconds) the bursts and the speech start.
pub fn test_signal() -> (Vec<i16>, [f64; 2], f64) {
    let rate = f64::from(OUTPUT_RATE_HZ);
    let mut x = 0x1234_5678u32;
    let mut burst = || -> Vec<i16> {
        let n = (BURST_S * rate) as usize;
        let mut prev = 0.0f64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Gently low-passed noise at −20 dBFS: broadband, nothing near Nyquist.
                let v = (f64::from(x >> 8) / f64::from(1u32 << 24) - 0.5) * 2.0;
                prev = 0.5 * prev + 0.5 * v;
                (prev * 5_600.0) as i16
            })
            .collect()
    };
    let speech = room(RoomSpec {
        seconds: SPEECH_S,
        rir_s: 0.001,
        double_talk: (0.0, 0.0),
        ..RoomSpec::default()
    })
    .far24;
    let gap = vec![0i16; (GAP_S * rate) as usize];
    let mut s = Vec::new();
    s.extend(burst());
    s.extend(&gap);
    let speech_at = s.len() as f64 / rate;
    s.extend(&speech);
    s.extend(&gap);
    let second = s.len() as f64 / rate;
    s.extend(burst());
    s.extend(&gap);
    (s, [0.0, second], speech_at)
}

/// Plays the test signal on `playback`, records `capture`, and measures.
pub fn run(capture: &str, playback: &str) -> Result<Calibration, CalibrateError> {
    let (signal, bursts_at, speech_at) = test_signal();
    let total_s = signal.len() as f64 / f64::from(OUTPUT_RATE_HZ) + 0.8;
    let (ref_tx, ref_rx) = reference_channel();
    let cap_dev = capture.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let capture_thread = std::thread::Builder::new()
        .name("calibrate-capture".into())
        .spawn(move || record(&cap_dev, total_s, ref_rx, ready_tx))
        .map_err(|_| CalibrateError::Thread("capture"))?;
    // The capture stream must run before the test signal starts (some take seconds to
    // deliver their first audio); if it never does, the capture thread's error says why.
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        return match capture_thread.join() {
            Ok(Err(e)) => Err(e),
            _ => Err(CalibrateError::Thread("capture")),
        };
    }
    let played = play(playback, &signal, ref_tx);
    let rec = capture_thread
        .join()
        .map_err(|_| CalibrateError::Thread("capture"))?;
    let t_play0 = played?;
    let rec = rec?;
    Ok(analyse(
        &signal, bursts_at, speech_at, t_play0, &rec, capture, playback,
    ))
}

/// What the capture side recorded.
pub struct Recording {
    /// Raw mic samples and when the first was captured (monotonic s).
    pub mic: Vec<i16>,
    pub t0: f64,
    /// The canceller's output, sample for sample.
    pub out: Vec<i16>,
    pub stats: EchoStats,
}

fn record(
    device: &str,
    seconds: f64,
    ref_rx: super::echo::ReferenceRx,
    ready: std::sync::mpsc::Sender<()>,
) -> Result<Recording, CalibrateError> {
    let (pcm, period, _) = open_capture(device, 200)?;
    let io_err = |source| AudioError::Io {
        device: device.to_string(),
        dir: Dir::Capture,
        source,
    };
    let io = pcm.io_i16().map_err(io_err)?;
    let mut echo = EchoProcessor::new(EchoSettings {
        mode: EchoMode::Aec,
        tail_s: 0.3,
        render_rate_hz: OUTPUT_RATE_HZ,
    });
    let stats = EchoStats::default();
    // Recording starts once audio flows: 300 ms of it, then the test signal plays.
    let lead_in = (0.3 * f64::from(INPUT_RATE_HZ)) as usize;
    let want = (seconds * f64::from(INPUT_RATE_HZ)) as usize + lead_in;
    let mut mic = Vec::with_capacity(want);
    let mut out = Vec::with_capacity(want + 8_000);
    let mut buf = vec![0i16; period.max(1)];
    let mut starts: Vec<f64> = Vec::with_capacity(want / period.max(1) + 1);
    let mut started: Option<Instant> = None;
    while mic.len() < want {
        let n = match io.readi(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                pcm.try_recover(e, true).map_err(io_err)?;
                pcm.start().ok();
                continue;
            }
        };
        // Real devices deliver audio in real time; a file-backed one would run ahead: pace it
        // (before stamping) so its timestamps mean the same.
        let audio_t = (mic.len() + n) as f64 / f64::from(INPUT_RATE_HZ);
        let wall = started
            .get_or_insert_with(Instant::now)
            .elapsed()
            .as_secs_f64();
        if audio_t > wall {
            std::thread::sleep(Duration::from_secs_f64(audio_t - wall));
        }
        let (t_first, now) = captured_at(&pcm, n);
        // Each read dates the start of the recording; delay readings jitter, so take the
        // median of all of them.
        starts.push(t_first - mic.len() as f64 / f64::from(INPUT_RATE_HZ));
        ref_rx.drain_into(&mut echo);
        echo.capture(t_first, &buf[..n]);
        echo.process(now, &mut out, &stats);
        mic.extend_from_slice(&buf[..n]);
        if mic.len() >= lead_in && mic.len() - n < lead_in {
            let _ = ready.send(());
        }
    }
    ref_rx.drain_into(&mut echo);
    echo.process(f64::INFINITY, &mut out, &stats);
    starts.sort_by(f64::total_cmp);
    Ok(Recording {
        mic,
        t0: starts.get(starts.len() / 2).copied().unwrap_or(0.0),
        out,
        stats,
    })
}

/// Plays `signal` at 24 kHz; returns when its first sample was heard (monotonic s).
fn play(device: &str, signal: &[i16], mut reference: ReferenceTx) -> Result<f64, CalibrateError> {
    let (pcm, period, _) = open_playback(device, OUTPUT_RATE_HZ, 200)?;
    let io_err = |source| AudioError::Io {
        device: device.to_string(),
        dir: Dir::Playback,
        source,
    };
    let io = pcm.io_i16().map_err(io_err)?;
    let rate = f64::from(OUTPUT_RATE_HZ);
    let mut first = None;
    let mut done = 0;
    let started = Instant::now();
    while done < signal.len() {
        let end = (done + period.max(1)).min(signal.len());
        match io.writei(&signal[done..end]) {
            Ok(n) => {
                let t = heard_at(&pcm, n, OUTPUT_RATE_HZ);
                first.get_or_insert(t - done as f64 / rate);
                reference.played(t, OUTPUT_RATE_HZ, &signal[done..done + n]);
                done += n;
                // A file-backed device accepts everything at once: keep to real time.
                let audio_t = done as f64 / rate;
                let wall = started.elapsed().as_secs_f64();
                if audio_t > wall + 0.1 {
                    std::thread::sleep(Duration::from_secs_f64(audio_t - wall - 0.1));
                }
            }
            Err(e) => pcm.try_recover(e, true).map_err(io_err)?,
        }
    }
    let _ = pcm.drain();
    Ok(first.unwrap_or(0.0))
}

/// Card of an ALSA device name (`hw:1,0`, `plughw:CARD=Device,DEV=0`, `hw:Device`); `None`
/// for names that do not say (`default`, `pulse`, user-defined PCMs).
pub fn card_of(device: &str) -> Option<String> {
    let (kind, rest) = device.split_once(':')?;
    if !matches!(
        kind,
        "hw" | "plughw" | "dsnoop" | "dmix" | "sysdefault" | "front"
    ) {
        return None;
    }
    let first = rest.split(',').next()?;
    let card = first.strip_prefix("CARD=").unwrap_or(first);
    (!card.is_empty()).then(|| card.to_string())
}

/// Capture-card mixer switches that look like automatic gain control and are on.
fn agc_controls(card: &str) -> Vec<String> {
    let Ok(mixer) = alsa::mixer::Mixer::new(&format!("hw:{card}"), false) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for elem in mixer.iter() {
        let Some(selem) = alsa::mixer::Selem::new(elem) else {
            continue;
        };
        let Ok(name) = selem.get_id().get_name().map(str::to_string) else {
            continue;
        };
        let lower = name.to_lowercase();
        if !(lower.contains("agc") || lower.contains("auto gain")) {
            continue;
        }
        let on = [
            selem.get_capture_switch(alsa::mixer::SelemChannelId::mono()),
            selem.get_playback_switch(alsa::mixer::SelemChannelId::mono()),
        ]
        .iter()
        .any(|s| matches!(s, Ok(v) if *v != 0));
        if on {
            found.push(name);
        }
    }
    found
}

/// Delay of `burst` (24 kHz, heard from `t_burst`) in the mic recording, by normalised
/// cross-correlation on the common timeline; `None` if no clear peak.
fn burst_delay(mic: &[i16], t0: f64, burst: &[i16], t_burst: f64) -> Option<f64> {
    let rate = f64::from(INPUT_RATE_HZ);
    // The burst at 16 kHz (linear interpolation: enough for a correlation peak).
    let n16 = (burst.len() as f64 * rate / f64::from(OUTPUT_RATE_HZ)) as usize;
    let b16: Vec<f64> = (0..n16)
        .map(|i| {
            let p = i as f64 * f64::from(OUTPUT_RATE_HZ) / rate;
            let j = p as usize;
            let fr = p - j as f64;
            let a = f64::from(burst[j.min(burst.len() - 1)]);
            let b = f64::from(burst[(j + 1).min(burst.len() - 1)]);
            a + (b - a) * fr
        })
        .collect();
    let start = ((t_burst - t0) * rate).round() as i64;
    let bn: f64 = b16.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut best = (0i64, 0.0f64);
    let mut sum = 0.0;
    // From a little before "no delay" (timestamps are not perfect) to SEARCH_S after.
    let early = (0.1 * rate) as i64;
    let lags = (SEARCH_S * rate) as i64;
    for lag in -early..lags {
        let at = start + lag;
        if at < 0 || at as usize + n16 > mic.len() {
            continue;
        }
        let seg = &mic[at as usize..at as usize + n16];
        let c: f64 = seg.iter().zip(&b16).map(|(&m, b)| f64::from(m) * b).sum();
        let mn: f64 = seg
            .iter()
            .map(|&m| f64::from(m).powi(2))
            .sum::<f64>()
            .sqrt();
        let r = if mn > 0.0 { (c / (mn * bn)).abs() } else { 0.0 };
        sum += r;
        if r > best.1 {
            best = (lag, r);
        }
    }
    let mean = sum / (lags + early) as f64;
    log::debug!(
        "burst correlation peak {:.3} at {:.1} ms (floor {mean:.3})",
        best.1,
        best.0 as f64 * 1000.0 / rate
    );
    // A real echo stands far above the correlation floor.
    (best.1 > 0.2 && best.1 > 4.0 * mean).then(|| best.0 as f64 * 1000.0 / rate)
}

fn analyse(
    signal: &[i16],
    bursts_at: [f64; 2],
    speech_at: f64,
    t_play0: f64,
    rec: &Recording,
    capture: &str,
    playback: &str,
) -> Calibration {
    let rate24 = f64::from(OUTPUT_RATE_HZ);
    let rate16 = f64::from(INPUT_RATE_HZ);
    let burst_len = (BURST_S * rate24) as usize;
    let delays = bursts_at.map(|at| {
        let s = (at * rate24) as usize;
        burst_delay(&rec.mic, rec.t0, &signal[s..s + burst_len], t_play0 + at)
    });
    // The speech as heard at the mic, from the measured delay (or no delay).
    let d = delays.iter().flatten().next().copied().unwrap_or(0.0) / 1000.0;
    let idx = |t: f64| (((t - rec.t0) * rate16).max(0.0) as usize).min(rec.mic.len());
    let s0 = idx(t_play0 + speech_at + d);
    let s1 = idx(t_play0 + speech_at + SPEECH_S + d);
    let echo_dbfs = dbfs(rms_i16(&rec.mic[s0..s1]));
    let p0 = (speech_at * rate24) as usize;
    let played_dbfs = dbfs(rms_i16(&signal[p0..p0 + (SPEECH_S * rate24) as usize]));
    // ERLE over the last 1.5 s of speech: the canceller has converged and the gate is open.
    let e0 = idx(t_play0 + speech_at + SPEECH_S - 1.5 + d);
    let e_in: f64 = rec.mic[e0..s1].iter().map(|&v| f64::from(v).powi(2)).sum();
    let e_out: f64 = rec.out[e0.min(rec.out.len())..s1.min(rec.out.len())]
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum();
    let erle_db = (e_in > 0.0 && s1 > e0).then(|| 10.0 * (e_in / e_out.max(1.0)).log10());
    let clipped = rec
        .mic
        .iter()
        .filter(|v| v.unsigned_abs() >= 32_700)
        .count() as f64
        / rec.mic.len().max(1) as f64;
    let capture_card = card_of(capture);
    let agc = capture_card
        .as_deref()
        .map(agc_controls)
        .unwrap_or_default();
    Calibration {
        burst_delays_ms: delays,
        aec_delay_ms: rec.stats.delay_ms().map(|d| d as f64 - LEAD_S * 1000.0),
        echo_dbfs,
        played_dbfs,
        erle_db,
        clipped,
        capture_card,
        playback_card: card_of(playback),
        agc_controls: agc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_from_device_names() {
        assert_eq!(card_of("hw:1,0").as_deref(), Some("1"));
        assert_eq!(
            card_of("plughw:CARD=Device,DEV=0").as_deref(),
            Some("Device")
        );
        assert_eq!(card_of("default"), None);
        assert_eq!(card_of("gemlive_mic"), None);
    }

    #[test]
    fn warnings_name_what_defeats_cancellation() {
        let good = Calibration {
            burst_delays_ms: [Some(80.0), Some(81.0)],
            aec_delay_ms: Some(76.0),
            echo_dbfs: -35.0,
            played_dbfs: -15.0,
            erle_db: Some(40.0),
            clipped: 0.0,
            capture_card: Some("1".into()),
            playback_card: Some("1".into()),
            agc_controls: Vec::new(),
        };
        assert!(good.warnings().is_empty(), "{:?}", good.warnings());
        assert!(good.to_string().contains("acoustic delay: 80.5 ms"));
        let bad = Calibration {
            burst_delays_ms: [Some(380.0), Some(420.0)],
            echo_dbfs: -10.0,
            erle_db: Some(8.0),
            clipped: 0.01,
            playback_card: Some("2".into()),
            agc_controls: vec!["Mic AGC".into()],
            ..good
        };
        let w = bad.warnings().join("\n");
        for what in [
            "over 230 ms",
            "unstable",
            "different cards",
            "clips",
            "`Mic AGC`",
            "only 8 dB",
            "as loud as it plays",
        ] {
            assert!(w.contains(what), "{what}: {w}");
        }
    }

    #[test]
    fn a_delayed_copy_is_found_at_its_delay() {
        let (signal, at, _) = test_signal();
        let burst = &signal[..(BURST_S * 24_000.0) as usize];
        // The mic: silence, then the burst (resampled by dropping every third sample) 123 ms
        // after it was heard, at a tenth of the level.
        let mut mic = vec![0i16; 16_000];
        let delay = (0.123 * 16_000.0) as usize;
        for (i, m) in mic.iter_mut().enumerate().skip(delay).take(4_800) {
            let j = ((i - delay) as f64 * 1.5) as usize;
            *m = burst.get(j).copied().unwrap_or(0) / 10;
        }
        let d = burst_delay(&mic, 50.0, burst, 50.0 + at[0]).expect("found");
        assert!((d - 123.0).abs() <= 1.0, "{d}");
        assert!(burst_delay(&vec![0; 16_000], 50.0, burst, 50.0).is_none());
    }
}
