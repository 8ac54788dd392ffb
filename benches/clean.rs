//! Noise suppression and AGC (`[audio] noise_suppression`, `[audio] agc`): what each setting
//! does to speech in noise, and what it costs.
//!
//! Speech is espeak-ng's (several voices, Debian's; `bash .ci/deps --test` installs it), mixed
//! with four kinds of noise at 0, 5, 10 and 20 dB SNR. Because the speech alone is known, the
//! output can be split into stretches where someone talks and stretches of noise only:
//! - **SNR after** = (output power while talking − output noise power) / output noise power;
//! - **speech kept** = that speech power against the clean speech's, in dB (0 = untouched);
//! - **noise removed** = output noise power against the input's, in dB.
//!
//! Then AGC2: the speech level out for a quiet, a normal and a loud talker, and CPU per second of
//! audio for every setting. Run: cargo bench --bench clean

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use gemlive::audio::clean::{CleanSettings, Cleaner, NoiseSuppression};

const RATE: usize = 16_000;
const FRAME: usize = 160;

fn say(text: &str, voice: &str, wpm: u32) -> Vec<f64> {
    match support::speech(text, voice, wpm) {
        Some(b) => b
            .chunks_exact(2)
            .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        None => {
            eprintln!("espeak-ng is missing (bash .ci/deps --test installs it)");
            std::process::exit(1);
        }
    }
}

/// About 40 s of speech with natural pauses, in four voices.
fn talker() -> Vec<f64> {
    let lines = [
        (
            "en-us",
            "What is the weather going to be like tomorrow morning in the garden?",
        ),
        (
            "en-gb",
            "Please turn the kitchen lights off and set a timer for twelve minutes.",
        ),
        (
            "en-us+f3",
            "Can you read me the last message from my sister, and then play some music?",
        ),
        (
            "en-gb+m3",
            "How many grams of flour go into a loaf of bread, roughly speaking?",
        ),
        (
            "en-us+f2",
            "Tell me a short story about a fox who learned to fix bicycles.",
        ),
        (
            "en-us+m5",
            "Remind me to water the tomatoes when I get home this evening.",
        ),
    ];
    let mut out = Vec::new();
    for (i, (voice, text)) in lines.iter().enumerate() {
        out.extend(std::iter::repeat_n(0.0, RATE * (6 + i % 3) / 10));
        out.extend(say(text, voice, 150 + 10 * (i as u32 % 3)));
    }
    out.extend(std::iter::repeat_n(0.0, RATE / 2));
    // Speech at a normal level for a mic at arm's length: its active parts near −26 dBFS.
    let active = active_power(&out, &activity(&out));
    let g = (32_768.0 * 10f64.powf(-26.0 / 20.0)) / active.sqrt();
    out.iter().map(|v| v * g).collect()
}

struct Rng(u32);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        f64::from(self.0 >> 8) / f64::from(1u32 << 24) * 2.0 - 1.0
    }
}

fn noise(kind: &str, n: usize) -> Vec<f64> {
    let mut r = Rng(0x9e37_79b9);
    match kind {
        "fan" => support::fan_noise(n, 0x9e37_79b9),
        "white" => (0..n).map(|_| r.next()).collect(),
        // Mains hum and its harmonics over a little hiss.
        "hum" => (0..n)
            .map(|i| {
                let t = i as f64 / RATE as f64;
                (1..6)
                    .map(|h| (t * 2.0 * std::f64::consts::PI * 50.0 * h as f64).sin() / h as f64)
                    .sum::<f64>()
                    + 0.05 * r.next()
            })
            .collect(),
        // Other people talking (a TV, a room): three voices at once, none of them the talker.
        _ => {
            let a = say("The committee will meet again on Thursday to discuss the budget for next year and the new library.", "en-gb+f4", 170);
            let b = say("In other news, the local football club won its third match in a row after a late goal.", "en-us+m2", 160);
            let c = say(
                "Traffic on the northern ring road is slow because of roadworks near the bridge.",
                "en-gb+m6",
                180,
            );
            (0..n)
                .map(|i| a[i % a.len()] + b[(i + 7_919) % b.len()] + c[(i + 15_013) % c.len()])
                .collect()
        }
    }
}

/// Per 10 ms frame: does the clean speech talk here (within 30 dB of its loudest frame)? And is
/// it silent (nothing at all)? Frames in between are left out of both measurements.
fn activity(speech: &[f64]) -> Vec<Option<bool>> {
    let p: Vec<f64> = speech
        .chunks(FRAME)
        .map(|f| f.iter().map(|v| v * v).sum::<f64>() / f.len() as f64)
        .collect();
    let max = p.iter().copied().fold(0.0, f64::max);
    p.iter()
        .map(|&e| {
            if e > max * 1e-3 {
                Some(true)
            } else if e < max * 1e-7 {
                Some(false)
            } else {
                None
            }
        })
        .collect()
}

fn power(x: &[f64], act: &[Option<bool>], want: bool) -> f64 {
    let (mut e, mut n) = (0.0, 0usize);
    for (f, a) in x.chunks(FRAME).zip(act) {
        if *a == Some(want) {
            e += f.iter().map(|v| v * v).sum::<f64>();
            n += f.len();
        }
    }
    e / n.max(1) as f64
}

fn active_power(x: &[f64], act: &[Option<bool>]) -> f64 {
    power(x, act, true)
}

fn db(x: f64) -> f64 {
    10.0 * x.max(1e-12).log10()
}

fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| v.round().clamp(-32_768.0, 32_767.0) as i16)
        .collect()
}

fn run(settings: CleanSettings, input: &[i16]) -> (Vec<f64>, f64) {
    let mut c = Cleaner::new(settings);
    let mut y = input.to_vec();
    let start = Instant::now();
    // 20 ms at a time, as the capture thread hands it out.
    for chunk in y.chunks_mut(2 * FRAME) {
        c.process(chunk);
    }
    let ms_per_s = start.elapsed().as_secs_f64() * 1000.0 / (input.len() as f64 / RATE as f64);
    (y.iter().map(|&v| f64::from(v)).collect(), ms_per_s)
}

fn main() {
    let speech = talker();
    let act = activity(&speech);
    let talk_frames = act.iter().filter(|a| **a == Some(true)).count();
    let quiet_frames = act.iter().filter(|a| **a == Some(false)).count();
    println!(
        "speech: {:.1} s (talking {:.1} s, silent {:.1} s)",
        speech.len() as f64 / RATE as f64,
        talk_frames as f64 / 100.0,
        quiet_frames as f64 / 100.0
    );
    let p_speech = active_power(&speech, &act);
    let levels = [
        NoiseSuppression::Off,
        NoiseSuppression::Low,
        NoiseSuppression::Moderate,
        NoiseSuppression::High,
    ];
    let mut cpu = vec![0.0f64; levels.len()];
    let mut runs = 0usize;
    println!();
    println!("noise   SNR in | level     SNR after  speech kept  noise removed");
    // Skip the first 3 s of each measurement: the suppressor's noise estimate settles.
    let skip = 300;
    let mut sum_gain = vec![0.0f64; levels.len()];
    let mut sum_kept = vec![0.0f64; levels.len()];
    let mut cells = 0usize;
    for kind in ["fan", "white", "hum", "babble"] {
        let raw = noise(kind, speech.len());
        let p_noise_raw = raw.iter().map(|v| v * v).sum::<f64>() / raw.len() as f64;
        for snr in [0.0, 5.0, 10.0, 20.0] {
            let g = (p_speech / p_noise_raw / 10f64.powf(snr / 10.0)).sqrt();
            let n: Vec<f64> = raw.iter().map(|v| v * g).collect();
            let mix: Vec<f64> = speech.iter().zip(&n).map(|(s, n)| s + n).collect();
            let input = to_i16(&mix);
            let act_m: Vec<Option<bool>> = act
                .iter()
                .enumerate()
                .map(|(i, a)| if i < skip { None } else { *a })
                .collect();
            let p_in_noise = power(&n, &act_m, false);
            let snr_in = db(power(&speech, &act_m, true) / power(&n, &act_m, true));
            for (li, &level) in levels.iter().enumerate() {
                let (y, ms) = run(
                    CleanSettings {
                        noise_suppression: level,
                        agc: false,
                    },
                    &input,
                );
                cpu[li] += ms;
                let p_talk = power(&y, &act_m, true);
                let p_quiet = power(&y, &act_m, false);
                let p_s = (p_talk - p_quiet).max(1e-12);
                let snr_out = db(p_s / p_quiet);
                let kept = db(p_s / power(&speech, &act_m, true));
                let removed = db(p_in_noise / p_quiet);
                sum_gain[li] += snr_out - snr_in;
                sum_kept[li] += kept;
                println!(
                    "{kind:<7} {snr_in:>5.1} | {:<9} {snr_out:>6.1} dB  {kept:>+7.1} dB  {removed:>8.1} dB",
                    level.as_str()
                );
            }
            cells += 1;
            runs += 1;
            println!();
        }
    }
    println!("mean over the 16 mixtures:");
    for (li, level) in levels.iter().enumerate() {
        println!(
            "  {:<9} SNR {:+5.1} dB, speech kept {:+5.1} dB",
            level.as_str(),
            sum_gain[li] / cells as f64,
            sum_kept[li] / cells as f64
        );
    }

    println!();
    println!(
        "AGC2 (noise suppression off), a talker in a quiet room (noise 40 dB below the speech):"
    );
    let hiss = noise("white", speech.len());
    let p_hiss = hiss.iter().map(|v| v * v).sum::<f64>() / hiss.len() as f64;
    let mut agc_ms = 0.0;
    for (who, level_db) in [("quiet", -46.0), ("normal", -26.0), ("loud", -10.0)] {
        let gs = 10f64.powf((level_db + 26.0) / 20.0);
        let gn = (p_speech * gs * gs / p_hiss / 1e4).sqrt();
        let mix: Vec<f64> = speech
            .iter()
            .zip(&hiss)
            .map(|(s, n)| s * gs + n * gn)
            .collect();
        let input = to_i16(&mix);
        let (y, ms) = run(
            CleanSettings {
                noise_suppression: NoiseSuppression::Off,
                agc: true,
            },
            &input,
        );
        agc_ms += ms;
        // The second half: the gain has adapted.
        let half: Vec<Option<bool>> = act
            .iter()
            .enumerate()
            .map(|(i, a)| if i < act.len() / 2 { None } else { *a })
            .collect();
        let x: Vec<f64> = input.iter().map(|&v| f64::from(v)).collect();
        let fs = 32_768.0f64 * 32_768.0;
        let peak = y.iter().fold(0.0f64, |m, v| m.max(v.abs())) / 32_768.0;
        println!(
            "  {who:<6} talker: speech {:>6.1} -> {:>6.1} dBFS, room {:>6.1} -> {:>6.1} dBFS, peak {:>5.1} dBFS",
            db(power(&x, &half, true) / fs),
            db(power(&y, &half, true) / fs),
            db(power(&x, &half, false) / fs),
            db(power(&y, &half, false) / fs),
            db(peak * peak)
        );
    }

    println!();
    println!("CPU per second of audio (this machine):");
    for (li, level) in levels.iter().enumerate() {
        println!(
            "  noise_suppression = {:<9} {:.3} ms",
            level.as_str(),
            cpu[li] / runs as f64
        );
    }
    println!("  agc = true              {:.3} ms", agc_ms / 3.0);
    let (_, both) = run(
        CleanSettings {
            noise_suppression: NoiseSuppression::Moderate,
            agc: true,
        },
        &to_i16(&speech),
    );
    println!("  moderate + agc          {both:.3} ms");
}
