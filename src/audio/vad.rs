//! Local voice detection on the processed (echo-cancelled) mic audio: WebRTC's RNN voice
//! detector from AGC2, which `sonora` already builds. It decides when a room is silent for
//! `[audio] pause_on_silence_s`; it never decides what the model hears.

use sonora_agc2::vad_wrapper::VoiceActivityDetectorWrapper;

use super::INPUT_RATE_HZ;

/// 10 ms at 16 kHz: the detector's unit.
const FRAME: usize = (INPUT_RATE_HZ / 100) as usize;
/// Speech probability that counts as speech (AGC2 itself uses 0.9 for its level estimate; a
/// pause decision wants every syllable, so lower).
const SPEECH_P: f32 = 0.5;
/// Frames of speech in a row before "someone talks" (a door slam is one or two).
const ONSET_FRAMES: u32 = 3;
/// Frames without speech before "the room is quiet" again: gaps between words.
const HANGOVER_FRAMES: u32 = 50;
/// AGC2 resets its detector every 1.5 s to forget a level; here it would cut words in two.
const NO_RESET_MS: i32 = 10 * (i32::MAX / 10);

/// Feeds 16 kHz samples, reports transitions between quiet and speech.
pub struct VoiceDetector {
    vad: VoiceActivityDetectorWrapper,
    frame: [f32; FRAME],
    filled: usize,
    run: u32,
    quiet_run: u32,
    speaking: bool,
    /// Highest probability seen since the last `take_peak` (for diagnosis).
    peak: f32,
}

impl Default for VoiceDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceDetector {
    pub fn new() -> Self {
        VoiceDetector {
            vad: VoiceActivityDetectorWrapper::with_reset_period(
                NO_RESET_MS,
                sonora_simd::detect_backend(),
                INPUT_RATE_HZ as i32,
            ),
            frame: [0.0; FRAME],
            filled: 0,
            run: 0,
            quiet_run: 0,
            speaking: false,
            peak: 0.0,
        }
    }

    /// True while someone talks (with onset and hangover applied).
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Feeds samples; returns `Some(now_speaking)` when the state changed during them.
    pub fn push(&mut self, samples: &[i16]) -> Option<bool> {
        let before = self.speaking;
        for &s in samples {
            // AGC2 works on float samples at 16-bit scale.
            self.frame[self.filled] = f32::from(s);
            self.filled += 1;
            if self.filled == FRAME {
                self.filled = 0;
                let p = self.vad.analyze(&self.frame);
                self.peak = self.peak.max(p);
                self.step(p >= SPEECH_P);
            }
        }
        (self.speaking != before).then_some(self.speaking)
    }

    fn step(&mut self, speech: bool) {
        if speech {
            self.run += 1;
            self.quiet_run = 0;
            if self.run >= ONSET_FRAMES {
                self.speaking = true;
            }
        } else {
            self.run = 0;
            self.quiet_run += 1;
            if self.quiet_run >= HANGOVER_FRAMES {
                self.speaking = false;
            }
        }
    }

    /// The highest speech probability since the last call.
    pub fn take_peak(&mut self) -> f32 {
        std::mem::take(&mut self.peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vowel-like buzz: 140 Hz glottal pulses through two formants, syllables of 200 ms.
    fn voice(secs: f64) -> Vec<i16> {
        let n = (secs * 16_000.0) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let syllable = ((t * 5.0).fract() < 0.7) as i32 as f64;
                let f0 = 140.0 + 20.0 * (t * 3.0).sin();
                let v: f64 = (1..30)
                    .map(|h| {
                        let f = f0 * f64::from(h);
                        let formant = (-((f - 700.0) / 200.0).powi(2)).exp()
                            + 0.6 * (-((f - 1_200.0) / 250.0).powi(2)).exp();
                        formant * (2.0 * std::f64::consts::PI * f * t).sin()
                    })
                    .sum();
                (v * syllable * 6_000.0) as i16
            })
            .collect()
    }

    fn noise(secs: f64, amp: f64) -> Vec<i16> {
        let mut x = 0x1234_5678u32;
        (0..(secs * 16_000.0) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                ((f64::from(x) / f64::from(u32::MAX) - 0.5) * amp) as i16
            })
            .collect()
    }

    #[test]
    fn quiet_and_steady_noise_are_not_speech_and_a_voice_is() {
        let mut d = VoiceDetector::new();
        assert_eq!(d.push(&vec![0; 32_000]), None, "digital silence");
        assert_eq!(d.push(&noise(3.0, 600.0)), None, "fan noise");
        assert!(!d.speaking());
        assert_eq!(d.push(&voice(1.0)), Some(true), "peak {}", d.take_peak());
        // Quiet again within the hangover and the detector's own memory (~0.2 s).
        let back: Vec<Option<bool>> = (0..10).map(|_| d.push(&noise(0.1, 600.0))).collect();
        assert_eq!(
            back.iter().flatten().collect::<Vec<_>>(),
            [&false],
            "{back:?}"
        );
        assert!(back[..5].iter().all(Option::is_none), "{back:?}");
    }
}
