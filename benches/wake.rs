//! CPU time of the wake-word detector per second of audio: the front end alone, and front end
//! plus inference for each built-in model. Goal: well under 5 ms per second of audio on x86.
//! Run: cargo bench --bench wake

use std::time::Instant;

use gemlive::wake::features::FeatureExtractor;
use gemlive::wake::{Detector, BUILTIN};

fn speechlike(seconds: usize) -> Vec<i16> {
    // Deterministic noise shaped into syllable-length bursts: exercises every stage without
    // needing an audio file.
    let mut x: u32 = 0x1234_5678;
    (0..seconds * 16_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let env = ((i as f32 / 16_000.0 * 4.0 * std::f32::consts::PI).sin()).max(0.0);
            let tone = (i as f32 * 0.09).sin() * 6000.0;
            ((x as i32 >> 20) as f32 * 2.0 * env + tone * env) as i16
        })
        .collect()
}

fn main() {
    let seconds = 60;
    let pcm = speechlike(seconds);

    let start = Instant::now();
    let mut fe = FeatureExtractor::new();
    let mut frames = 0usize;
    for chunk in pcm.chunks(320) {
        fe.push(chunk, |_| frames += 1);
    }
    let t = start.elapsed();
    println!(
        "features only: {:.3} ms per second of audio ({frames} frames)",
        t.as_secs_f64() * 1000.0 / seconds as f64
    );

    for name in BUILTIN {
        let mut d = match Detector::builtin(name) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        };
        let start = Instant::now();
        let mut fired = 0usize;
        for chunk in pcm.chunks(320) {
            match d.push(chunk) {
                Ok(v) => fired += v.len(),
                Err(e) => {
                    eprintln!("{name}: {e}");
                    std::process::exit(1);
                }
            }
        }
        let t = start.elapsed();
        println!(
            "{name:<12} features + inference: {:.3} ms per second of audio (best {:.3}, {fired} fired)",
            t.as_secs_f64() * 1000.0 / seconds as f64,
            d.best_probability()
        );
    }
}
