//! Shared helpers for the integration tests (the one home for them).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const KEY: &str = "AIzaTEST-secret-key-0123456789";

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gemlive"))
}

/// Deterministic noise-like S16_LE audio: any reordering, loss or duplication shows.
pub fn pcm(seed: u32, bytes: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub async fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
