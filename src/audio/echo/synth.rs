//! The synthetic room (`docs/aec.md`, "Synthetic room"), for the benchmark and the tests: a
//! speech-like far end, a loudspeaker (high-pass) in a room (RT60 ~0.3 s, bulk delay
//! 40–120 ms), a second voice at the mic during a double-talk section, and the metrics (ERLE,
//! near-end retention).
//!
//! Voices are sums of harmonics evaluated in continuous time, so the same far end is produced
//! exactly at 24 kHz (what we play) and at 16 kHz (what reaches the mic) without a resampler.

use std::f64::consts::PI;

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct RoomSpec {
    pub seconds: f64,
    /// Loudspeaker-to-mic bulk delay (plus converter latency), seconds.
    pub bulk_delay_s: f64,
    pub rt60_s: f64,
    /// Length of the impulse response, seconds (≥ RT60 for a full tail).
    pub rir_s: f64,
    /// Double talk: the near end speaks from .0 to .1, seconds.
    pub double_talk: (f64, f64),
    /// Near end relative to the echo at the mic (signal-to-echo ratio), dB.
    pub ser_db: f64,
    pub seed: u32,
    /// Nothing plays from .0 to .1, seconds (the pause between two replies); (0, 0) = none.
    pub pause: (f64, f64),
}

impl Default for RoomSpec {
    fn default() -> Self {
        RoomSpec {
            seconds: 30.0,
            bulk_delay_s: 0.080,
            rt60_s: 0.3,
            rir_s: 0.3,
            double_talk: (20.0, 26.0),
            ser_db: -6.0,
            seed: 1,
            pause: (0.0, 0.0),
        }
    }
}

/// A rendered room.
pub struct Room {
    pub spec: RoomSpec,
    /// What the daemon plays: 24 kHz.
    pub far24: Vec<i16>,
    /// The microphone: echo + near end + noise, 16 kHz.
    pub mic: Vec<i16>,
    /// The echo alone at the mic, 16 kHz.
    pub echo: Vec<f32>,
    /// The near end alone at the mic, 16 kHz.
    pub near: Vec<f32>,
}

struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        f64::from(self.next() >> 8) / f64::from(1u32 << 24)
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
    /// Roughly normal (sum of four uniforms).
    fn gauss(&mut self) -> f64 {
        (self.f() + self.f() + self.f() + self.f() - 2.0) * 1.732
    }
}

struct Syllable {
    start: f64,
    dur: f64,
    f0: (f64, f64),
    formants: [f64; 3],
}

/// A voice: pitch range and a vowel table (F1, F2, F3 in Hz).
struct Voice {
    f0: (f64, f64),
    vowels: &'static [[f64; 3]],
}

const LOW_VOWELS: &[[f64; 3]] = &[
    [730.0, 1090.0, 2440.0],
    [270.0, 2290.0, 3010.0],
    [530.0, 1840.0, 2480.0],
    [570.0, 840.0, 2410.0],
    [300.0, 870.0, 2240.0],
    [660.0, 1720.0, 2410.0],
];
const HIGH_VOWELS: &[[f64; 3]] = &[
    [850.0, 1220.0, 2810.0],
    [310.0, 2790.0, 3310.0],
    [610.0, 2330.0, 2990.0],
    [590.0, 920.0, 2710.0],
    [370.0, 950.0, 2670.0],
];

fn schedule(v: &Voice, seconds: f64, rng: &mut Rng) -> Vec<Syllable> {
    let mut out = Vec::new();
    let mut t = 0.2;
    while t < seconds {
        // A phrase of 4–9 syllables, then a pause.
        let n = 4 + (rng.next() % 6) as usize;
        for _ in 0..n {
            let dur = rng.range(0.14, 0.30);
            let f0a = rng.range(v.f0.0, v.f0.1);
            let f0b = (f0a * rng.range(0.85, 1.15)).clamp(v.f0.0 * 0.8, v.f0.1 * 1.2);
            let formants = v.vowels[(rng.next() as usize) % v.vowels.len()];
            out.push(Syllable {
                start: t,
                dur,
                f0: (f0a, f0b),
                formants,
            });
            t += dur + rng.range(0.02, 0.08);
        }
        t += rng.range(0.3, 0.8);
    }
    out
}

/// The voice at time `t` (continuous), unscaled.
fn voice_at(syl: &[Syllable], idx: &mut usize, t: f64) -> f64 {
    while *idx < syl.len() && syl[*idx].start + syl[*idx].dur < t {
        *idx += 1;
    }
    let Some(s) = syl.get(*idx) else { return 0.0 };
    let tau = t - s.start;
    if tau < 0.0 {
        return 0.0;
    }
    // Raised-cosine attack and release of 30 ms.
    let ramp = 0.03;
    let env = if tau < ramp {
        0.5 - 0.5 * (PI * tau / ramp).cos()
    } else if tau > s.dur - ramp {
        0.5 - 0.5 * (PI * (s.dur - tau) / ramp).cos()
    } else {
        1.0
    };
    // Linear pitch glide: phase is the integral of f0.
    let f0_now = s.f0.0 + (s.f0.1 - s.f0.0) * tau / s.dur;
    let phase = 2.0 * PI * (s.f0.0 * tau + (s.f0.1 - s.f0.0) * tau * tau / (2.0 * s.dur));
    let mut x = 0.0;
    let mut h = 1.0;
    while h * f0_now < 3800.0 {
        let f = h * f0_now;
        let mut a = 0.02;
        for (k, fk) in s.formants.iter().enumerate() {
            let bw = 90.0 + 40.0 * k as f64;
            a += (-((f - fk) / bw).powi(2)).exp() / (1.0 + k as f64);
        }
        x += a / h.sqrt() * (h * phase).sin();
        h += 1.0;
    }
    x * env
}

fn render_voice(syl: &[Syllable], rate: f64, n: usize) -> Vec<f64> {
    let mut idx = 0;
    (0..n)
        .map(|i| voice_at(syl, &mut idx, i as f64 / rate))
        .collect()
}

/// How much noise the voice has at `t`: a consonant (40 ms) before each syllable and some
/// breath under it. Real speech is not purely periodic; a purely harmonic far end lets an
/// echo canceller's delay estimator lock onto pitch periods.
fn noise_env(syl: &[Syllable], idx: &mut usize, t: f64) -> f64 {
    while *idx < syl.len() && syl[*idx].start + syl[*idx].dur < t {
        *idx += 1;
    }
    let Some(s) = syl.get(*idx) else { return 0.0 };
    let tau = t - s.start;
    if (-0.04..0.0).contains(&tau) {
        0.5 * (1.0 - (PI * (tau + 0.04) / 0.04).cos())
    } else if (0.0..s.dur).contains(&tau) {
        0.15
    } else {
        0.0
    }
}

/// The voice's noise part, rendered once at 48 kHz and band-limited to 4 kHz so that taking
/// every 2nd / 3rd sample gives the same sound at 24 and 16 kHz. Returns (24 kHz, 16 kHz).
fn render_noise(syl: &[Syllable], seconds: f64, rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let n48 = (seconds * 48_000.0) as usize;
    // 63-tap windowed-sinc low-pass at 4 kHz.
    const TAPS: usize = 63;
    let fc = 4_000.0 / 48_000.0;
    let h: Vec<f64> = (0..TAPS)
        .map(|k| {
            let m = k as f64 - (TAPS - 1) as f64 / 2.0;
            let sinc = if m == 0.0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * m).sin() / (PI * m)
            };
            let w = 0.54 - 0.46 * (2.0 * PI * k as f64 / (TAPS - 1) as f64).cos();
            sinc * w
        })
        .collect();
    let white: Vec<f64> = (0..n48 + TAPS).map(|_| rng.gauss()).collect();
    let mut idx = 0;
    let x48: Vec<f64> = (0..n48)
        .map(|i| {
            let v: f64 = h.iter().zip(&white[i..i + TAPS]).map(|(a, b)| a * b).sum();
            // Scaled to sit like consonants against the harmonic part.
            v * 2.5 * noise_env(syl, &mut idx, i as f64 / 48_000.0)
        })
        .collect();
    (
        x48.iter().step_by(2).copied().collect(),
        x48.iter().step_by(3).copied().collect(),
    )
}

/// RMS over the frames (20 ms) that are active (within 30 dB of the loudest).
fn active_rms(x: &[f64], rate: f64) -> f64 {
    let f = (rate * 0.02) as usize;
    let frames: Vec<f64> = x
        .chunks(f)
        .map(|c| c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64)
        .collect();
    let max = frames.iter().cloned().fold(0.0, f64::max);
    let act: Vec<f64> = frames.into_iter().filter(|&e| e > max * 1e-3).collect();
    (act.iter().sum::<f64>() / act.len().max(1) as f64).sqrt()
}

/// 2nd-order Butterworth high-pass (the small loudspeaker).
fn highpass(x: &mut [f64], fc: f64, rate: f64) {
    let w = 2.0 * PI * fc / rate;
    let (cw, sw) = (w.cos(), w.sin());
    let alpha = sw / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
    let a0 = 1.0 + alpha;
    let b0 = (1.0 + cw) / 2.0 / a0;
    let b1 = -(1.0 + cw) / a0;
    let b2 = b0;
    let a1 = -2.0 * cw / a0;
    let a2 = (1.0 - alpha) / a0;
    let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
    for v in x.iter_mut() {
        let y = b0 * *v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
        x2 = x1;
        x1 = *v;
        y2 = y1;
        y1 = y;
        *v = y;
    }
}

/// Direct path, four early reflections, exponentially decaying diffuse tail (−9 dB).
fn rir(spec: &RoomSpec, rate: f64, rng: &mut Rng) -> Vec<f64> {
    let n = (spec.rir_s * rate) as usize;
    let mut h = vec![0.0; n.max(1)];
    h[0] = 1.0;
    let mut early = 1.0;
    for _ in 0..4 {
        let at = (rng.range(0.003, 0.018) * rate) as usize;
        let a = rng.range(0.3, 0.6) * if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
        if at < n {
            h[at] += a;
            early += a * a;
        }
    }
    let start = (0.005 * rate) as usize;
    let mut tail = vec![0.0; n];
    let mut e = 0.0;
    for (i, t) in tail.iter_mut().enumerate().skip(start) {
        let time = i as f64 / rate;
        *t = rng.gauss() * (-6.908 * time / spec.rt60_s).exp();
        e += *t * *t;
    }
    // Diffuse energy 9 dB below the direct and early sound.
    let g = if e > 0.0 {
        (early * 10f64.powf(-0.9) / e).sqrt()
    } else {
        0.0
    };
    for (hv, t) in h.iter_mut().zip(tail) {
        *hv += g * t;
    }
    h
}

fn convolve(x: &[f64], h: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (k, &hk) in h.iter().enumerate() {
        if hk == 0.0 {
            continue;
        }
        for (yv, &xv) in y[k..].iter_mut().zip(x) {
            *yv += hk * xv;
        }
    }
    y
}

fn db_to_lin(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Builds the room (deterministic for a given spec).
pub fn room(spec: RoomSpec) -> Room {
    let mut rng = Rng(spec.seed.wrapping_mul(2_654_435_761) | 1);
    let far_voice = Voice {
        f0: (95.0, 150.0),
        vowels: LOW_VOWELS,
    };
    let near_voice = Voice {
        f0: (190.0, 270.0),
        vowels: HIGH_VOWELS,
    };
    let far_syl = schedule(&far_voice, spec.seconds, &mut rng);
    let near_syl = schedule(&near_voice, spec.seconds, &mut rng);
    let n24 = (spec.seconds * 24_000.0) as usize;
    let n16 = (spec.seconds * 16_000.0) as usize;

    // The far end: −14 dBFS active RMS as played.
    let mut far24 = render_voice(&far_syl, 24_000.0, n24);
    let mut far16 = render_voice(&far_syl, 16_000.0, n16);
    let (noise24, noise16) = render_noise(&far_syl, spec.seconds, &mut rng);
    far24.iter_mut().zip(noise24).for_each(|(v, n)| *v += n);
    far16.iter_mut().zip(noise16).for_each(|(v, n)| *v += n);
    let g = db_to_lin(-14.0) / active_rms(&far24, 24_000.0).max(1e-9);
    far24.iter_mut().for_each(|v| *v *= g);
    far16.iter_mut().for_each(|v| *v *= g);
    for (buf, rate) in [(&mut far24, 24_000.0), (&mut far16, 16_000.0)] {
        let (a, b) = (
            ((spec.pause.0 * rate) as usize).min(buf.len()),
            ((spec.pause.1 * rate) as usize).min(buf.len()),
        );
        buf[a..b.max(a)].iter_mut().for_each(|v| *v = 0.0);
    }

    // Loudspeaker, bulk delay, room: the echo at the mic, −22 dBFS active.
    highpass(&mut far16, 250.0, 16_000.0);
    let delay = (spec.bulk_delay_s * 16_000.0).round() as usize;
    let mut delayed = vec![0.0; n16];
    delayed[delay.min(n16)..].copy_from_slice(&far16[..n16 - delay.min(n16)]);
    let h = rir(&spec, 16_000.0, &mut rng);
    let mut echo = convolve(&delayed, &h);
    let ge = db_to_lin(-22.0) / active_rms(&echo, 16_000.0).max(1e-9);
    echo.iter_mut().for_each(|v| *v *= ge);

    // The near end, only during double talk, SER below the echo.
    let mut near = render_voice(&near_syl, 16_000.0, n16);
    let (a, b) = (
        (spec.double_talk.0 * 16_000.0) as usize,
        ((spec.double_talk.1 * 16_000.0) as usize).min(n16),
    );
    let ramp = 320.0;
    for (i, v) in near.iter_mut().enumerate() {
        let w = if i < a || i >= b {
            0.0
        } else {
            ((i - a) as f64 / ramp).min((b - i) as f64 / ramp).min(1.0)
        };
        *v *= w;
    }
    let gn = db_to_lin(-22.0 + spec.ser_db) / active_rms(&near[a..b.max(a)], 16_000.0).max(1e-9);
    near.iter_mut().for_each(|v| *v *= gn);

    let noise = db_to_lin(-65.0) * 1.732;
    let mic = (0..n16)
        .map(|i| {
            let x = echo[i] + near[i] + noise * (rng.f() * 2.0 - 1.0);
            (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Room {
        spec,
        far24: far24
            .iter()
            .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect(),
        mic,
        echo: echo.iter().map(|&v| v as f32).collect(),
        near: near.iter().map(|&v| v as f32).collect(),
    }
}

/// ERLE over 20 ms frames in `from..to` (seconds) where the echo is active and the near end
/// silent: mic energy over output energy, dB. `out` is the processed mic (16 kHz, i16).
pub fn erle_db(room: &Room, out: &[i16], from: f64, to: f64) -> f64 {
    let f = 320;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    let a = (from * 16_000.0) as usize / f;
    let b = ((to * 16_000.0) as usize / f).min(out.len() / f);
    for k in a..b {
        let r = k * f..(k + 1) * f;
        let e: f64 = room.echo[r.clone()]
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            / f as f64;
        let nn: f64 = room.near[r.clone()]
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum();
        if e > 1e-5 && nn == 0.0 {
            num += room.mic[r.clone()]
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>();
            den += out[r].iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        }
    }
    10.0 * (num / den.max(1e-9)).log10()
}

/// Near-end retention during double talk: a 33-tap least-squares FIR from the clean near end
/// to the output (around the best lag) absorbs the canceller's fixed latency; retention is the
/// energy of that fitted component over the near-end energy, dB.
// Index arithmetic across several signals at once reads clearer than zipped iterators here.
#[allow(clippy::needless_range_loop)]
pub fn retention_db(room: &Room, out: &[i16]) -> f64 {
    let (a, b) = (
        (room.spec.double_talk.0 * 16_000.0) as usize,
        ((room.spec.double_talk.1 * 16_000.0) as usize).min(out.len()),
    );
    let near: Vec<f64> = room.near.iter().map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = out.iter().map(|&v| f64::from(v) / 32768.0).collect();
    // Best lag 0..400 samples by cross-correlation.
    let mut best = (0usize, f64::MIN);
    for lag in 0..400 {
        let c: f64 = (a..b.saturating_sub(lag))
            .map(|i| near[i] * y[i + lag])
            .sum();
        if c.abs() > best.1 {
            best = (lag, c.abs());
        }
    }
    const TAPS: usize = 33;
    let base = best.0 as i64 - 16;
    // Normal equations R w = p for y[i] ≈ Σ w_k near[i - (k + base)] ... written as a
    // regression of y[i + lag_k] on near[i].
    let x_at = |i: usize, k: usize| -> f64 {
        let j = i as i64 - (base + k as i64);
        if j >= 0 && (j as usize) < near.len() {
            near[j as usize]
        } else {
            0.0
        }
    };
    let start = a + TAPS + best.0;
    let mut r = vec![[0.0f64; TAPS]; TAPS];
    let mut p = [0.0f64; TAPS];
    for i in start..b {
        let xs: [f64; TAPS] = std::array::from_fn(|k| x_at(i, k));
        for k in 0..TAPS {
            p[k] += xs[k] * y[i];
            for l in 0..TAPS {
                r[k][l] += xs[k] * xs[l];
            }
        }
    }
    let w = solve(r, p);
    let mut fit = 0.0;
    let mut energy = 0.0;
    for i in start..b {
        let v: f64 = (0..TAPS).map(|k| w[k] * x_at(i, k)).sum();
        fit += v * v;
        energy += near[i] * near[i];
    }
    10.0 * (fit / energy.max(1e-12)).log10()
}

/// Gaussian elimination with partial pivoting (small, well-conditioned systems).
#[allow(clippy::needless_range_loop)]
fn solve<const N: usize>(mut a: Vec<[f64; N]>, mut b: [f64; N]) -> [f64; N] {
    for c in 0..N {
        let piv = (c..N)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, piv);
        b.swap(c, piv);
        let d = a[c][c];
        if d.abs() < 1e-15 {
            continue;
        }
        for r in 0..N {
            if r != c {
                let f = a[r][c] / d;
                if f != 0.0 {
                    for k in c..N {
                        a[r][k] -= f * a[c][k];
                    }
                    b[r] -= f * b[c];
                }
            }
        }
    }
    std::array::from_fn(|i| {
        if a[i][i].abs() < 1e-15 {
            0.0
        } else {
            b[i] / a[i][i]
        }
    })
}

/// Runs `room` through the capture-side processing exactly as the capture thread does: the
/// reference arrives 50 ms ahead of being heard (a playback thread writing ahead), capture
/// arrives in 10 ms reads, and `process` is called at the end of each read. Returns the
/// processed mic and the time spent in `process` and `reference`.
pub fn run(
    room: &Room,
    mode: crate::audio::EchoMode,
) -> (Vec<i16>, super::EchoStats, std::time::Duration) {
    run_with(room, mode, true, super::aec3::DelaySearch::DEFAULT)
}

/// `run`, with AEC3's idle bypass on or off (off: every frame through AEC3, to measure what
/// the bypass saves and that it costs no cancellation) and a given delay search.
pub fn run_with(
    room: &Room,
    mode: crate::audio::EchoMode,
    idle_bypass: bool,
    search: super::aec3::DelaySearch,
) -> (Vec<i16>, super::EchoStats, std::time::Duration) {
    use super::{EchoProcessor, EchoSettings, RefMsg, REF_BLOCK};
    let stats = super::EchoStats::default();
    let mut p = EchoProcessor::new(EchoSettings {
        mode,
        tail_s: 0.3,
        render_rate_hz: 24_000,
    })
    .with_delay_search(search);
    if !idle_bypass {
        p = p.without_idle_bypass();
    }
    let mut out = Vec::with_capacity(room.mic.len() + 8_000);
    let mut spent = std::time::Duration::ZERO;
    let t0 = 1000.0; // any monotonic origin
    let steps = room.mic.len() / 160;
    let ahead = 5; // reference blocks of 10 ms written ahead
    let mut pushed = 0;
    for k in 0..steps {
        let clock = std::time::Instant::now();
        while pushed < (k + ahead).min(room.far24.len() / 240) {
            let mut samples = [0i16; REF_BLOCK];
            samples[..240].copy_from_slice(&room.far24[pushed * 240..(pushed + 1) * 240]);
            p.reference(&RefMsg::Audio {
                t: t0 + pushed as f64 * 0.01,
                rate_hz: 24_000,
                len: 240,
                samples,
            });
            pushed += 1;
        }
        let t = t0 + k as f64 * 0.01;
        p.capture(t, &room.mic[k * 160..(k + 1) * 160]);
        p.process(t + 0.01, &mut out, &stats);
        spent += clock.elapsed();
    }
    (out, stats, spent)
}
