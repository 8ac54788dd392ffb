//! The per-message hot path of a session, measured on this machine:
//! - encoding one 40 ms mic chunk (1,280 bytes of 16 kHz S16_LE) as `realtimeInput.audio` JSON,
//!   25 times a second while the session is open;
//! - parsing one 200 ms reply-audio frame (9,600 bytes of 24 kHz PCM, pretty-printed JSON in a
//!   binary frame, as the service sends it) into events.
//!
//! Run: `cargo bench --bench live_codec`. Plain `std::time` timing (no harness): median of
//! 15 batches.

use std::hint::black_box;
use std::time::Instant;

use gemlive::live::proto::{write_audio_json, ClientMessage, ServerMessage};

fn median_ns_per_op(batches: usize, per_batch: usize, mut op: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let chunk: Vec<u8> = (0..1280u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut buf = String::with_capacity(2048);
    let enc = median_ns_per_op(15, 20_000, || {
        buf.clear();
        write_audio_json(&mut buf, black_box(&chunk), 16_000);
        black_box(&buf);
    });
    let enc_alloc = median_ns_per_op(15, 20_000, || {
        black_box(ClientMessage::audio(black_box(&chunk), 16_000).to_json());
    });

    let reply: Vec<u8> = (0..9600u32).map(|i| (i * 13 + 1) as u8).collect();
    let frame = serde_json::to_vec_pretty(&gemlive::standin::server_audio(&reply)).unwrap();
    let dec = median_ns_per_op(15, 2_000, || {
        let m = ServerMessage::parse(black_box(&frame)).unwrap();
        black_box(m.into_events());
    });

    println!(
        "encode 40 ms mic chunk, reused buffer   : {:>8.0} ns/msg ({} bytes JSON)",
        enc,
        buf.len()
    );
    println!(
        "encode 40 ms mic chunk, ClientMessage   : {:>8.0} ns/msg",
        enc_alloc
    );
    println!(
        "parse 200 ms reply frame ({} B) + events: {:>8.0} ns/msg",
        frame.len(),
        dec
    );
    println!(
        "share of one core at 25 mic msgs/s + 5 reply msgs/s: {:.3} %",
        (enc * 25.0 + dec * 5.0) / 1e9 * 100.0
    );
}
