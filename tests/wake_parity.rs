//! Parity of the native wake-word detector with the Python reference (pymicro-wakeword 2.5.0 +
//! pymicro-features 2.0.2) on espeak-ng speech. Needs the reference venv made by
//! tests/fixtures/wake/setup.sh (path in GEMLIVE_WAKE_VENV, default
//! ~/.cache/gemlive-test/wake-venv) and espeak-ng; skips loudly without them unless
//! REQUIRE_WAKE=1.

use std::path::{Path, PathBuf};
use std::process::Command;

use gemlive::wake::features::FeatureExtractor;
use gemlive::wake::Detector;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wake");
/// Prose to read aloud that says none of the wake phrases (Debian's `base-files`).
const PROSE: &str = "/usr/share/common-licenses/GPL-3";

fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("GEMLIVE_WAKE_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gemlive-test/wake-venv"))
        })?;
    let py = venv.join("bin/python");
    let espeak = Command::new("espeak-ng").arg("--version").output().is_ok();
    if py.exists() && espeak {
        return Some(py);
    }
    let msg = format!(
        "wake parity: SKIPPED (reference venv {} present: {}, espeak-ng present: {}); \
         run tests/fixtures/wake/setup.sh",
        venv.display(),
        py.exists(),
        espeak
    );
    if std::env::var("REQUIRE_WAKE").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("{msg}");
    None
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gemlive-wake-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn synth(dir: &Path, name: &str, voice: &str, speed: u32, gain: f32, text: &str) -> PathBuf {
    synth_noisy(dir, name, voice, speed, gain, text, None)
}

/// As `synth`, with `noise` ("fan:10": kind and SNR in dB) mixed in.
fn synth_noisy(
    dir: &Path,
    name: &str,
    voice: &str,
    speed: u32,
    gain: f32,
    text: &str,
    noise: Option<&str>,
) -> PathBuf {
    let out = dir.join(format!("{name}.raw"));
    let st = Command::new("python3")
        .arg(format!("{FIXTURES}/synth.py"))
        .args([voice, &speed.to_string(), &gain.to_string()])
        .arg(&out)
        .arg(text)
        .args(noise)
        .status()
        .expect("run synth.py");
    assert!(st.success(), "synth.py failed for {name}");
    out
}

fn read_pcm(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("read raw audio");
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn reference(py: &Path, audio: &Path, features: bool, models: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(py);
    cmd.arg(format!("{FIXTURES}/reference.py")).arg(audio);
    if features {
        cmd.arg("--features");
    }
    let out = cmd.args(models).output().expect("run reference.py");
    assert!(
        out.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

#[test]
fn features_match_reference() {
    let Some(py) = venv_python() else { return };
    let dir = tmpdir("features");
    let clips = [
        synth(
            &dir,
            "f1",
            "en-us",
            140,
            1.0,
            "okay nabu, what is the weather",
        ),
        synth(&dir, "f2", "en-gb", 170, 3.0, "hey jarvis, play some music"),
        synth(&dir, "f3", "en-us+f3", 120, 0.3, "alexa"),
    ];
    let mut worst = 0i64;
    let mut total = 0usize;
    let mut differing = 0usize;
    for clip in &clips {
        let pcm = read_pcm(clip);
        let mut ours: Vec<Vec<i64>> = Vec::new();
        let mut fe = FeatureExtractor::new();
        for chunk in pcm.chunks(333) {
            fe.push(chunk, |f| ours.push(f.iter().map(|&v| v as i64).collect()));
        }
        let r = reference(&py, clip, true, &[]);
        let theirs: Vec<Vec<i64>> = r["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| {
                f.as_array()
                    .expect("frame")
                    .iter()
                    .map(|v| v.as_i64().expect("int"))
                    .collect()
            })
            .collect();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "frame count for {}",
            clip.display()
        );
        for (a, b) in ours.iter().zip(&theirs) {
            for (x, y) in a.iter().zip(b) {
                total += 1;
                if x != y {
                    differing += 1;
                }
                worst = worst.max((x - y).abs());
            }
        }
    }
    eprintln!("features: {total} values, {differing} differ, max |diff| = {worst}");
    assert!(worst <= 1, "features differ by up to {worst}");
    let _ = std::fs::remove_dir_all(&dir);
}

struct Clip {
    name: String,
    /// The model this phrase is meant to wake, or None for other speech.
    target: Option<&'static str>,
    path: PathBuf,
}

#[test]
fn detections_match_reference() {
    let Some(py) = venv_python() else { return };
    let dir = tmpdir("detect");
    let phrases: [(&str, &str); 4] = [
        ("okay_nabu", "okay nabu"),
        ("alexa", "alexa"),
        ("hey_jarvis", "hey jarvis"),
        ("hey_mycroft", "hey mycroft"),
    ];
    let styles: [(&str, u32, f32); 6] = [
        ("en-us", 140, 1.0),
        ("en-us", 175, 2.0),
        ("en-gb", 120, 1.0),
        ("en-gb", 160, 0.5),
        ("en-us+f3", 150, 1.5),
        ("en-us+m7", 130, 1.0),
    ];
    let mut clips = Vec::new();
    for (model, text) in phrases {
        for (k, (voice, speed, gain)) in styles.iter().enumerate() {
            let name = format!("{model}-{k}");
            let path = synth(
                &dir,
                &name,
                voice,
                *speed,
                *gain,
                &format!("{text}, what time is it"),
            );
            clips.push(Clip {
                name: format!("{model} {voice} {speed} x{gain}"),
                target: Some(model),
                path,
            });
        }
    }
    let others = [
        "what time is it in tokyo",
        "turn off the kitchen light please",
        "the quick brown fox jumps over the lazy dog",
        "hey marvin, how are you today",
        "okay google, set a timer for ten minutes",
        "a lexicon of jargon for my crafts",
    ];
    for (k, text) in others.iter().enumerate() {
        let (voice, speed, gain) = styles[k % styles.len()];
        let path = synth(&dir, &format!("other-{k}"), voice, speed, gain, text);
        clips.push(Clip {
            name: format!("other: {text}"),
            target: None,
            path,
        });
    }

    // Over ten minutes of ordinary speech without any of the phrases, in noise: the GPL's
    // prose (every Debian system has it), read in turn by six voices over a fan, hiss and
    // mains hum at 5-15 dB SNR, in clips of about 75 s.
    let prose = std::fs::read_to_string(PROSE).unwrap_or_else(|e| panic!("{PROSE}: {e}"));
    let words: Vec<&str> = prose.split_whitespace().collect();
    let noises = ["fan:10", "white:15", "hum:10", "fan:5", "white:10"];
    let mut at = 0;
    for k in 0..9 {
        let mut text = String::new();
        while text.len() < 1_200 && at < words.len() {
            text.push_str(words[at]);
            text.push(' ');
            at += 1;
        }
        let (voice, speed, _) = styles[k % styles.len()];
        let noise = noises[k % noises.len()];
        let path = synth_noisy(
            &dir,
            &format!("prose-{k}"),
            voice,
            speed,
            1.0,
            &text,
            Some(noise),
        );
        clips.push(Clip {
            name: format!("prose {k} ({voice}, {noise})"),
            target: None,
            path,
        });
    }

    let models = ["okay_nabu", "alexa", "hey_jarvis", "hey_mycroft"];
    let mut inferences = 0usize;
    let mut raw_differ = 0usize;
    let mut raw_worst = 0i64;
    let mut shown = 0usize;
    let mut wrap_differ = 0usize;
    let mut wrap_worst = 0i64;
    let mut ref_fired_on_target = 0usize;
    let mut we_missed = 0usize;
    let mut ref_false = 0usize;
    let mut our_false = 0usize;
    let mut ours_on_target = 0usize;
    eprintln!(
        "{:<38} {:<12} {:>22} {:>22}",
        "clip", "model", "reference (max, fired)", "gemlive (max, fired)"
    );
    for clip in &clips {
        let pcm = read_pcm(&clip.path);
        let r = reference(&py, &clip.path, false, &models);
        for model in models {
            let mut w = Detector::builtin(model)
                .expect("builtin")
                .wrap_input_like_reference(true);
            w.trace(true);
            for chunk in pcm.chunks(512) {
                w.push(chunk).expect("push");
            }
            let wrapped = w.take_trace();
            let mut d = Detector::builtin(model).expect("builtin");
            d.trace(true);
            let mut fired = false;
            for chunk in pcm.chunks(512) {
                fired |= !d.push(chunk).expect("push").is_empty();
            }
            let trace = d.take_trace();
            let rm = &r["models"][model];
            let ref_raw: Vec<i64> = rm["raw"]
                .as_array()
                .expect("raw")
                .iter()
                .map(|v| v.as_i64().expect("int"))
                .collect();
            assert_eq!(
                trace.len(),
                ref_raw.len(),
                "inference count, {} / {model}",
                clip.name
            );
            for (a, b) in wrapped.iter().zip(&ref_raw) {
                let diff = (a.raw as i64 - b).abs();
                wrap_differ += usize::from(diff != 0);
                wrap_worst = wrap_worst.max(diff);
            }
            for (k, (a, b)) in trace.iter().zip(&ref_raw).enumerate() {
                inferences += 1;
                let diff = (a.raw as i64 - b).abs();
                if diff != 0 && shown < 12 {
                    shown += 1;
                    eprintln!(
                        "  differs: {} / {model} inference {k} of {}: gemlive {} reference {b}",
                        clip.name,
                        trace.len(),
                        a.raw
                    );
                }
                if diff != 0 {
                    raw_differ += 1;
                }
                raw_worst = raw_worst.max(diff);
            }
            let ref_fired = rm["fired"].as_bool().expect("fired");
            let ref_max = rm["max_mean"].as_f64().expect("max");
            let is_target = clip.target == Some(model);
            if is_target {
                if ref_fired {
                    ref_fired_on_target += 1;
                    if !fired {
                        we_missed += 1;
                    }
                }
                if fired {
                    ours_on_target += 1;
                }
            } else {
                ref_false += usize::from(ref_fired);
                our_false += usize::from(fired);
            }
            if is_target || ref_fired || fired {
                eprintln!(
                    "{:<38} {:<12} {:>15.3} {:>6} {:>15.3} {:>6}",
                    clip.name,
                    model,
                    ref_max,
                    if ref_fired { "FIRED" } else { "-" },
                    d.best_probability(),
                    if fired { "FIRED" } else { "-" }
                );
            }
        }
    }
    let phrase_clips = clips.iter().filter(|c| c.target.is_some()).count();
    let other_s: f64 = clips
        .iter()
        .filter(|c| c.target.is_none())
        .map(|c| std::fs::metadata(&c.path).map(|m| m.len()).unwrap_or(0) as f64 / 32_000.0)
        .sum();
    eprintln!(
        "speech without a phrase: {:.1} min, in noise from 5 to 15 dB SNR",
        other_s / 60.0
    );
    assert!(
        other_s >= 600.0,
        "at least 10 minutes without the phrase: {other_s:.0} s"
    );
    eprintln!(
        "{} clips ({} phrases): reference fired on {} of its phrases, gemlive on {} \
         ({} missed where the reference fired); false wakes: reference {}, gemlive {}",
        clips.len(),
        phrase_clips,
        ref_fired_on_target,
        ours_on_target,
        we_missed,
        ref_false,
        our_false
    );
    eprintln!(
        "raw uint8 outputs, {inferences} inferences: wrapping loud features like the reference \
         {wrap_differ} differ (max |diff| {wrap_worst}); saturating them (gemlive's default) \
         {raw_differ} differ (max |diff| {raw_worst})"
    );
    // Not yet bit-exact (see the report above); guard against regressions meanwhile.
    assert!(
        raw_differ * 50 <= inferences,
        "{raw_differ} of {inferences} raw outputs differ from the reference"
    );
    assert!(
        we_missed <= 1,
        "gemlive missed {we_missed} phrases the reference caught"
    );
    assert!(
        our_false <= ref_false,
        "gemlive woke falsely {our_false} times, the reference {ref_false}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
