//! The wake-word model reader and interpreter (`wake::tflite`, `wake::interp`), through
//! `Detector::from_parts`: the input is a `.tflite` file, as `[wake] model` may name any. A
//! model it accepts runs half a second of audio; either way nothing panics, and the memory it
//! takes stays bounded (AddressSanitizer's limit).

#![no_main]

use gemlive::wake::{Detector, Manifest};
use libfuzzer_sys::fuzz_target;

const MANIFEST: &str = include_str!("../../models/wake/okay_nabu.json");

fuzz_target!(|data: &[u8]| {
    let manifest = Manifest::parse(MANIFEST).expect("the shipped manifest parses");
    let Ok(mut d) = Detector::from_parts(manifest, data) else {
        return;
    };
    // Speech-like level noise: every layer sees non-zero input.
    let mut x: u32 = 0x2545_f491;
    let audio: Vec<i16> = (0..8_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 20) as i16 - 2_048
        })
        .collect();
    for chunk in audio.chunks(320) {
        if let Ok(found) = d.push(chunk) {
            for f in found {
                assert!((0.0..=1.0).contains(&f.probability), "{}", f.probability);
            }
        } else {
            return;
        }
    }
    assert!((0.0..=1.0).contains(&d.best_probability()));
});
