//! Local wake-word detection: microWakeWord models (int8 streaming TFLite + JSON manifest) run
//! natively, with no TensorFlow library. `features` is the audio front end the models were
//! trained on, `tflite` loads the model file, `interp` runs it; [`Detector`] ties them together
//! the way pymicro-wakeword does (3 feature frames per inference, mean of the last
//! `sliding_window_size` probabilities against `probability_cutoff`) and adds a refractory
//! period so one spoken phrase fires once.

pub mod features;
pub mod interp;
pub mod tflite;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use features::{FeatureExtractor, FEATURE_SCALE, NUM_CHANNELS, STEP_SAMPLES, WINDOW_SAMPLES};
use interp::Interpreter;
use tflite::{Model, TensorType};

#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad wake-word manifest: {0}")]
    Manifest(String),
    #[error("bad wake-word model: {0}")]
    Model(String),
    #[error("wake-word model uses operator {0}, which gemlive does not implement")]
    UnsupportedOp(String),
    #[error("no built-in wake word {0:?} (built in: okay_nabu, alexa, hey_jarvis, hey_mycroft)")]
    UnknownBuiltin(String),
}

/// The `micro` section of a manifest.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct MicroConfig {
    pub probability_cutoff: f32,
    pub sliding_window_size: usize,
    #[serde(default = "default_step")]
    pub feature_step_size: u32,
    #[serde(default)]
    pub tensor_arena_size: Option<u64>,
    #[serde(default)]
    pub minimum_esphome_version: Option<String>,
}

fn default_step() -> u32 {
    10
}

/// A microWakeWord JSON manifest.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Manifest {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub wake_word: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    /// File name of the `.tflite`, relative to the manifest.
    pub model: String,
    #[serde(default)]
    pub trained_languages: Vec<String>,
    #[serde(default)]
    pub version: Option<u32>,
    pub micro: MicroConfig,
}

impl Manifest {
    pub fn parse(json: &str) -> Result<Manifest, WakeError> {
        let m: Manifest =
            serde_json::from_str(json).map_err(|e| WakeError::Manifest(e.to_string()))?;
        if let Some(k) = &m.kind {
            if k != "micro" {
                return Err(WakeError::Manifest(format!(
                    "type {k:?} is not a microWakeWord model (expected \"micro\")"
                )));
            }
        }
        if !(m.micro.probability_cutoff > 0.0 && m.micro.probability_cutoff < 1.0) {
            return Err(WakeError::Manifest(format!(
                "probability_cutoff {} is not between 0 and 1",
                m.micro.probability_cutoff
            )));
        }
        if m.micro.sliding_window_size == 0 || m.micro.sliding_window_size > 100 {
            return Err(WakeError::Manifest(format!(
                "sliding_window_size {} is not in 1..=100",
                m.micro.sliding_window_size
            )));
        }
        if m.micro.feature_step_size != 10 {
            return Err(WakeError::Manifest(format!(
                "feature_step_size {} ms is not supported (the front end steps 10 ms)",
                m.micro.feature_step_size
            )));
        }
        Ok(m)
    }
}

/// Names accepted by [`Detector::builtin`].
pub const BUILTIN: [&str; 4] = ["okay_nabu", "alexa", "hey_jarvis", "hey_mycroft"];

fn builtin_files(name: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match name {
        "okay_nabu" => (
            include_str!("../../models/wake/okay_nabu.json"),
            include_bytes!("../../models/wake/okay_nabu.tflite").as_slice(),
        ),
        "alexa" => (
            include_str!("../../models/wake/alexa.json"),
            include_bytes!("../../models/wake/alexa.tflite").as_slice(),
        ),
        "hey_jarvis" => (
            include_str!("../../models/wake/hey_jarvis.json"),
            include_bytes!("../../models/wake/hey_jarvis.tflite").as_slice(),
        ),
        "hey_mycroft" => (
            include_str!("../../models/wake/hey_mycroft.json"),
            include_bytes!("../../models/wake/hey_mycroft.tflite").as_slice(),
        ),
        _ => return None,
    })
}

/// One firing of the detector.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub wake_word: String,
    /// Mean probability over the sliding window when it fired.
    pub probability: f32,
    /// Samples pushed since load/reset up to the end of the audio that made it fire.
    pub sample_offset: u64,
}

/// One model inference, for tests and `test-wake` style diagnostics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inference {
    /// The model's quantised output (uint8 for the shipped models).
    pub raw: i32,
    pub probability: f32,
    /// Mean over the sliding window, once it is full.
    pub mean: Option<f32>,
    pub sample_offset: u64,
}

/// Default quiet time after a detection: long enough for the rest of the phrase.
pub const DEFAULT_REFRACTORY_MS: u32 = 2000;

pub struct Detector {
    manifest: Manifest,
    cutoff: f32,
    window: usize,
    refractory_samples: u64,
    frontend: FeatureExtractor,
    interp: Interpreter,
    stride: usize,
    in_scale: f64,
    in_zp: i32,
    in_signed: bool,
    out_scale: f32,
    out_zp: i32,
    out_signed: bool,
    pending: Vec<u8>,
    frames_pending: usize,
    probs: VecDeque<f32>,
    samples: u64,
    quiet_until: u64,
    armed: bool,
    best: f32,
    trace: Option<Vec<Inference>>,
    wrap_input: bool,
}

impl Detector {
    /// Loads a manifest and the `.tflite` it names (relative to the manifest).
    pub fn load(manifest_path: impl AsRef<Path>) -> Result<Detector, WakeError> {
        let path = manifest_path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| WakeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let manifest = Manifest::parse(&json)?;
        let model_path = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&manifest.model);
        let meta = std::fs::metadata(&model_path).map_err(|source| WakeError::Io {
            path: model_path.clone(),
            source,
        })?;
        if meta.len() > tflite::MAX_MODEL_BYTES as u64 {
            return Err(WakeError::Model(format!(
                "{} is {} bytes, too large for a wake-word model",
                model_path.display(),
                meta.len()
            )));
        }
        let bytes = std::fs::read(&model_path).map_err(|source| WakeError::Io {
            path: model_path.clone(),
            source,
        })?;
        Detector::from_parts(manifest, &bytes)
    }

    /// One of the models shipped in the binary ([`BUILTIN`]).
    pub fn builtin(name: &str) -> Result<Detector, WakeError> {
        let (json, model) =
            builtin_files(name).ok_or_else(|| WakeError::UnknownBuiltin(name.to_string()))?;
        Detector::from_parts(Manifest::parse(json)?, model)
    }

    pub fn from_parts(manifest: Manifest, model: &[u8]) -> Result<Detector, WakeError> {
        let interp = Interpreter::new(Model::parse(model)?)?;
        let input = interp.input_tensor()?;
        let in_signed = match input.ty {
            TensorType::Int8 => true,
            TensorType::UInt8 => false,
            other => {
                return Err(WakeError::Model(format!(
                    "input tensor is {other:?}, expected int8 or uint8"
                )))
            }
        };
        if input.shape.len() != 3 || input.shape[0] != 1 || input.shape[2] != NUM_CHANNELS {
            return Err(WakeError::Model(format!(
                "input shape {:?} is not [1, stride, {NUM_CHANNELS}]",
                input.shape
            )));
        }
        let stride = input.shape[1];
        if stride == 0 || stride > 100 {
            return Err(WakeError::Model(format!("input stride {stride}")));
        }
        let (in_scale, in_zp) = input.scale_zp()?;
        let output = interp.output_tensor()?;
        let out_signed = match output.ty {
            TensorType::Int8 => true,
            TensorType::UInt8 => false,
            other => {
                return Err(WakeError::Model(format!(
                    "output tensor is {other:?}, expected int8 or uint8"
                )))
            }
        };
        if output.elements() != 1 {
            return Err(WakeError::Model(format!(
                "output shape {:?} is not a single probability",
                output.shape
            )));
        }
        let (out_scale, out_zp) = output.scale_zp()?;
        let cutoff = manifest.micro.probability_cutoff;
        let window = manifest.micro.sliding_window_size;
        Ok(Detector {
            manifest,
            cutoff,
            window,
            refractory_samples: DEFAULT_REFRACTORY_MS as u64 * 16,
            frontend: FeatureExtractor::new(),
            interp,
            stride,
            in_scale: in_scale as f64,
            in_zp,
            in_signed,
            out_scale,
            out_zp,
            out_signed,
            pending: vec![0; stride * NUM_CHANNELS],
            frames_pending: 0,
            probs: VecDeque::new(),
            samples: 0,
            quiet_until: 0,
            armed: true,
            best: 0.0,
            trace: None,
            wrap_input: false,
        })
    }

    /// Overrides the manifest's probability cutoff (0..1).
    pub fn with_cutoff(mut self, cutoff: f32) -> Result<Detector, WakeError> {
        if !(cutoff > 0.0 && cutoff < 1.0) {
            return Err(WakeError::Manifest(format!(
                "cutoff {cutoff} is not between 0 and 1"
            )));
        }
        self.cutoff = cutoff;
        Ok(self)
    }

    /// Overrides the manifest's sliding window (number of inferences averaged).
    pub fn with_window(mut self, window: usize) -> Result<Detector, WakeError> {
        if window == 0 || window > 100 {
            return Err(WakeError::Manifest(format!(
                "window {window} is not in 1..=100"
            )));
        }
        self.window = window;
        Ok(self)
    }

    /// Quiet time after a detection (0 = fire on every inference above the cutoff).
    pub fn with_refractory_ms(mut self, ms: u32) -> Detector {
        self.refractory_samples = ms as u64 * 16;
        self
    }

    /// Quantises out-of-range features the way the Python reference does (numpy's float to
    /// int8 cast wraps around) instead of saturating. Only for parity testing: wrapping turns
    /// very loud input into quiet-looking features.
    pub fn wrap_input_like_reference(mut self, on: bool) -> Detector {
        self.wrap_input = on;
        self
    }

    /// Records every inference until [`Detector::take_trace`].
    pub fn trace(&mut self, on: bool) {
        self.trace = if on { Some(Vec::new()) } else { None };
    }

    pub fn take_trace(&mut self) -> Vec<Inference> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn wake_word(&self) -> &str {
        &self.manifest.wake_word
    }

    pub fn cutoff(&self) -> f32 {
        self.cutoff
    }

    pub fn window(&self) -> usize {
        self.window
    }

    /// Highest sliding-window mean seen since load, reset or [`Detector::reset_best`].
    pub fn best_probability(&self) -> f32 {
        self.best
    }

    pub fn reset_best(&mut self) {
        self.best = 0.0;
    }

    /// Forgets all audio and model state (as after load); the overrides stay.
    pub fn reset(&mut self) {
        self.frontend.reset();
        self.interp.reset();
        self.frames_pending = 0;
        self.probs.clear();
        self.samples = 0;
        self.quiet_until = 0;
        self.armed = true;
        self.best = 0.0;
        if let Some(t) = self.trace.as_mut() {
            t.clear();
        }
    }

    /// Feeds 16 kHz mono samples (any chunk size); returns the detections they completed.
    pub fn push(&mut self, pcm: &[i16]) -> Result<Vec<Detection>, WakeError> {
        let mut frames: Vec<[u16; NUM_CHANNELS]> = Vec::new();
        let mut detections = Vec::new();
        // The front end calls back per frame; frames are gathered first so the model (which
        // borrows self mutably) runs outside that closure.
        let start = self.samples;
        self.frontend.push(pcm, |f| frames.push(*f));
        self.samples += pcm.len() as u64;
        let first_frame_end = {
            // Samples consumed before this call that belong to a frame completed here.
            let produced_before = frames_before(start);
            produced_before * STEP_SAMPLES as u64 + WINDOW_SAMPLES as u64
        };
        for (k, frame) in frames.iter().enumerate() {
            let frame_end = first_frame_end + k as u64 * STEP_SAMPLES as u64;
            if let Some(d) = self.frame(frame, frame_end)? {
                detections.push(d);
            }
        }
        Ok(detections)
    }

    fn frame(
        &mut self,
        frame: &[u16; NUM_CHANNELS],
        frame_end: u64,
    ) -> Result<Option<Detection>, WakeError> {
        let base = self.frames_pending * NUM_CHANNELS;
        for (i, &v) in frame.iter().enumerate() {
            // Same arithmetic as the reference (float64, round half to even). The reference
            // lets numpy wrap values outside the int8 range; that only happens for very loud
            // input, where saturating (as ESPHome does) is the meaningful choice.
            let x = (v as f32 * FEATURE_SCALE) as f64 / self.in_scale + self.in_zp as f64;
            let q = x.round_ties_even() as i64;
            self.pending[base + i] = if self.wrap_input {
                q as u8
            } else if self.in_signed {
                q.clamp(-128, 127) as i8 as u8
            } else {
                q.clamp(0, 255) as u8
            };
        }
        self.frames_pending += 1;
        if self.frames_pending < self.stride {
            return Ok(None);
        }
        self.frames_pending = 0;
        self.interp.input_mut()?.copy_from_slice(&self.pending);
        self.interp.invoke()?;
        let out = self
            .interp
            .output()?
            .first()
            .copied()
            .ok_or_else(|| WakeError::Model("empty output".into()))?;
        let raw = if self.out_signed {
            out as i8 as i32
        } else {
            out as i32
        };
        let prob = (raw - self.out_zp) as f32 * self.out_scale;
        self.probs.push_back(prob);
        while self.probs.len() > self.window {
            self.probs.pop_front();
        }
        let mean = (self.probs.len() == self.window).then(|| {
            (self.probs.iter().map(|&p| p as f64).sum::<f64>() / self.window as f64) as f32
        });
        if let Some(t) = self.trace.as_mut() {
            t.push(Inference {
                raw,
                probability: prob,
                mean,
                sample_offset: frame_end,
            });
        }
        let Some(mean) = mean else {
            return Ok(None);
        };
        self.best = self.best.max(mean);
        if mean <= self.cutoff {
            self.armed = true;
            return Ok(None);
        }
        if !self.armed || frame_end < self.quiet_until {
            return Ok(None);
        }
        self.armed = false;
        self.quiet_until = frame_end + self.refractory_samples;
        Ok(Some(Detection {
            wake_word: self.manifest.wake_word.clone(),
            probability: mean,
            sample_offset: frame_end,
        }))
    }
}

/// Frames the front end had completed once `samples` samples were pushed.
fn frames_before(samples: u64) -> u64 {
    if samples < WINDOW_SAMPLES as u64 {
        0
    } else {
        (samples - WINDOW_SAMPLES as u64) / STEP_SAMPLES as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_and_builtins_load() {
        for name in BUILTIN {
            let d = Detector::builtin(name).expect(name);
            assert!(d.cutoff() > 0.5, "{name}");
            assert_eq!(d.window(), 5);
        }
        assert!(matches!(
            Detector::builtin("hey_siri"),
            Err(WakeError::UnknownBuiltin(_))
        ));
        assert!(Manifest::parse("{}").is_err());
        assert!(Manifest::parse(
            r#"{"wake_word":"x","model":"x.tflite","micro":{"probability_cutoff":1.5,"sliding_window_size":5}}"#
        )
        .is_err());
    }

    /// Models the fuzzer (`fuzz/`, target wake_model) broke the interpreter with: an
    /// operator whose output is its input, a scale so large its shift overflowed, and zero
    /// points that overflowed an accumulator. Refused or run, never a panic.
    #[test]
    fn fuzzed_models_are_refused_or_run_without_panicking() {
        let manifest =
            || Manifest::parse(include_str!("../../models/wake/okay_nabu.json")).expect("manifest");
        let out_is_in = include_bytes!("../../tests/fixtures/wake/fuzz-output-is-input.tflite");
        let e = Detector::from_parts(manifest(), out_is_in)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("output is also its input"), "{e}");
        for model in [
            include_bytes!("../../tests/fixtures/wake/fuzz-huge-scale.tflite").as_slice(),
            include_bytes!("../../tests/fixtures/wake/fuzz-accumulator-overflow.tflite").as_slice(),
            // A concatenation whose input scale makes the requantised value saturate the
            // float-to-int cast; adding the zero point then overflowed.
            include_bytes!("../../tests/fixtures/wake/fuzz-concat-rescale-overflow.tflite")
                .as_slice(),
        ] {
            let Ok(mut d) = Detector::from_parts(manifest(), model) else {
                continue;
            };
            let noise: Vec<i16> = (0..8_000)
                .map(|i| ((i * 7_919) % 4_096) as i16 - 2_048)
                .collect();
            for c in noise.chunks(320) {
                if d.push(c).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn silence_never_fires_and_offsets_advance() {
        let mut d = Detector::builtin("okay_nabu").expect("load");
        d.trace(true);
        let mut dets = Vec::new();
        for _ in 0..30 {
            dets.extend(d.push(&[0i16; 1000]).expect("push"));
        }
        assert!(dets.is_empty());
        let t = d.take_trace();
        // 30000 samples -> 185 frames -> 61 inferences
        assert_eq!(t.len(), 61);
        assert_eq!(t[0].sample_offset, 480 + 2 * 160);
        assert_eq!(t[1].sample_offset, 480 + 5 * 160);
        assert!(d.best_probability() < 0.5);
    }

    #[test]
    fn overrides_are_checked() {
        let d = Detector::builtin("alexa").expect("load");
        assert!(d.with_cutoff(0.0).is_err());
        let d = Detector::builtin("alexa").expect("load");
        let d = d
            .with_cutoff(0.5)
            .expect("cutoff")
            .with_window(3)
            .expect("window");
        assert_eq!((d.cutoff(), d.window()), (0.5, 3));
    }
}
