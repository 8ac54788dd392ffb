//! Noise suppression and automatic gain (`[audio] noise_suppression`, `[audio] agc`): WebRTC's
//! noise suppressor and AGC2 from `sonora`, on 10 ms frames of what the echo stage lets out
//! (`docs/design.md`, "Noise suppression and gain").
//!
//! A separate processing module rather than switches in the canceller's: it works the same
//! with every `echo` mode, and the canceller's own health checks (ERLE, the barge-in
//! detector's levels) keep judging the signal they were tuned on, not one a gain stage has
//! raised. The wake word hears the canceller's output, not this: the reference detector it is
//! checked against was trained on unprocessed audio.

use super::echo::FRAME;
use super::INPUT_RATE_HZ;

/// `[audio] noise_suppression`. TOML: `"off"`, `"low"`, `"moderate"`, `"high"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoiseSuppression {
    Off,
    Low,
    #[default]
    Moderate,
    High,
}

impl NoiseSuppression {
    pub const ALL: [NoiseSuppression; 4] = [Self::Off, Self::Low, Self::Moderate, Self::High];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Low => "low",
            Self::Moderate => "moderate",
            Self::High => "high",
        }
    }

    fn level(self) -> Option<sonora::config::NoiseSuppressionLevel> {
        use sonora::config::NoiseSuppressionLevel as L;
        match self {
            Self::Off => None,
            Self::Low => Some(L::Low),
            Self::Moderate => Some(L::Moderate),
            Self::High => Some(L::High),
        }
    }
}

/// What the cleaner does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanSettings {
    pub noise_suppression: NoiseSuppression,
    pub agc: bool,
}

impl CleanSettings {
    /// For the log and `check-config`: "noise suppression moderate, automatic gain off".
    pub fn describe(self) -> String {
        format!(
            "noise suppression {}, automatic gain {}",
            self.noise_suppression.as_str(),
            if self.agc { "on" } else { "off" }
        )
    }

    pub fn is_off(self) -> bool {
        self.noise_suppression == NoiseSuppression::Off && !self.agc
    }
}

/// AGC2's adaptive gain never exceeds this. WebRTC's default (50 dB) is made for headsets
/// far quieter than a room mic; 30 dB lifts a cheap USB mic's −50 dBFS speech to a normal
/// level and keeps a silent room's hiss down.
const AGC_MAX_GAIN_DB: f32 = 30.0;
/// The gain a session starts with. WebRTC's 15 dB clips a normal mic for its first seconds;
/// from 0 dB the controller climbs at 6 dB/s only if the speech is quiet.
const AGC_INITIAL_GAIN_DB: f32 = 0.0;

/// The processing stage. Built on the capture thread; state survives a device reopen.
pub struct Cleaner {
    apm: Option<sonora::AudioProcessing>,
    frame: [i16; FRAME],
}

impl Cleaner {
    pub fn new(settings: CleanSettings) -> Self {
        let apm = (!settings.is_off()).then(|| {
            let config = sonora::Config {
                noise_suppression: settings.noise_suppression.level().map(|level| {
                    sonora::config::NoiseSuppression {
                        level,
                        ..Default::default()
                    }
                }),
                gain_controller2: settings.agc.then(|| sonora::config::GainController2 {
                    adaptive_digital: Some(sonora::config::AdaptiveDigital {
                        max_gain_db: AGC_MAX_GAIN_DB,
                        initial_gain_db: AGC_INITIAL_GAIN_DB,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            sonora::AudioProcessing::builder()
                .config(config)
                .capture_config(sonora::StreamConfig::new(INPUT_RATE_HZ, 1))
                .build()
        });
        Cleaner {
            apm,
            frame: [0; FRAME],
        }
    }

    pub fn is_active(&self) -> bool {
        self.apm.is_some()
    }

    /// Processes `samples` in place, 10 ms at a time. The echo stage only ever hands out whole
    /// frames; a partial one at the end would pass through unchanged.
    pub fn process(&mut self, samples: &mut [i16]) {
        let Some(apm) = self.apm.as_mut() else {
            return;
        };
        for chunk in samples.chunks_exact_mut(FRAME) {
            self.frame.copy_from_slice(chunk);
            // Only malformed frames fail, and ours are fixed-size: the input then stays.
            let _ = apm.process_capture_i16(&self.frame, chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, amp: f64, seed: u32) -> Vec<i16> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                ((f64::from(x >> 16) - 32_768.0) / 32_768.0 * amp) as i16
            })
            .collect()
    }

    fn rms_db(x: &[i16]) -> f64 {
        let e: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        10.0 * (e / x.len() as f64 / (32_768.0 * 32_768.0))
            .max(1e-12)
            .log10()
    }

    #[test]
    fn off_is_bit_exact() {
        let mut c = Cleaner::new(CleanSettings {
            noise_suppression: NoiseSuppression::Off,
            agc: false,
        });
        assert!(!c.is_active());
        let x = noise(16_000, 3_000.0, 7);
        let mut y = x.clone();
        c.process(&mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn suppression_lowers_steady_noise_by_level() {
        // Five seconds of steady noise: each level takes more of it away than the one before.
        let x = noise(5 * 16_000, 2_000.0, 11);
        let mut last = rms_db(&x);
        for level in [
            NoiseSuppression::Low,
            NoiseSuppression::Moderate,
            NoiseSuppression::High,
        ] {
            let mut c = Cleaner::new(CleanSettings {
                noise_suppression: level,
                agc: false,
            });
            let mut y = x.clone();
            c.process(&mut y);
            // The last two seconds: the noise estimate has settled.
            let after = rms_db(&y[3 * 16_000..]);
            assert!(
                after < last - 3.0,
                "{}: {after:.1} dBFS, the level before {last:.1}",
                level.as_str()
            );
            last = after;
        }
    }

    #[test]
    fn agc_lifts_quiet_tone_bursts() {
        // A quiet voiced-like signal (harmonics in syllable bursts, about −45 dBFS): after ten
        // seconds AGC2 has raised it by well over 10 dB.
        let x: Vec<i16> = (0..10 * 16_000)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let env = (t * 2.0 * std::f64::consts::PI * 2.0).sin().max(0.0);
                let v: f64 = (1..8)
                    .map(|h| (t * 2.0 * std::f64::consts::PI * 140.0 * h as f64).sin() / h as f64)
                    .sum();
                (v * env * 300.0) as i16
            })
            .collect();
        let mut c = Cleaner::new(CleanSettings {
            noise_suppression: NoiseSuppression::Off,
            agc: true,
        });
        let mut y = x.clone();
        c.process(&mut y);
        let before = rms_db(&x[8 * 16_000..]);
        let after = rms_db(&y[8 * 16_000..]);
        assert!(after > before + 10.0, "{before:.1} -> {after:.1} dBFS");
        assert!(
            after < -3.0,
            "the limiter keeps it under full scale: {after:.1}"
        );
    }
}
