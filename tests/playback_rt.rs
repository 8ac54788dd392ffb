//! The playback thread on a real-time device (a private PulseAudio through alsa-lib's pulse
//! plugin): a barge-in that arrives while a reply's end is playing out is acted on at once.
//!
//! Before, the end of a reply was a blocking `snd_pcm_drain`: a discard in its last 200 ms
//! waited for the whole buffer to play; mid-reply, a discard waited for the write of the
//! current period. Now the drop is issued within 5 ms of `discard()` in both cases, and nothing
//! of the reply is written after it. Own test binary: it points alsa-lib at its own
//! config (`ALSA_CONFIG_PATH`) before anything in the process opens a device.
//!
//! Skips loudly without PulseAudio unless `REQUIRE_PULSE` is set (CI installs it).

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gemlive::audio::playback;
use gemlive::audio::AudioStats;
use support::pulse::Pulse;

/// `n` ms of a 440 Hz tone at 24 kHz, S16_LE mono.
fn tone_ms(n: usize) -> Vec<u8> {
    (0..n * 24)
        .flat_map(|i| {
            let x = (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 24_000.0).sin() * 8_000.0;
            (x as i16).to_le_bytes()
        })
        .collect()
}

/// Waits until `counter` exceeds `before` (or 2 s pass); returns when it did.
fn changed(counter: &std::sync::atomic::AtomicU64, before: u64) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        if AudioStats::get(counter) > before {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    None
}

#[test]
fn a_discard_while_a_reply_ends_drops_at_once() {
    let Some(pa) = Pulse::start("playback-rt", 50, 65_536) else {
        return;
    };
    let conf = pa.dir.join("asound.conf");
    std::fs::write(&conf, pa.alsa_conf("mic", "speaker")).unwrap();
    // Before any device is opened in this process (its only test).
    std::env::set_var("ALSA_CONFIG_PATH", &conf);
    let stats = Arc::new(AudioStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (h, join) =
        playback::spawn("speaker".into(), 100, stop.clone(), stats.clone(), None).unwrap();

    let mut worst = Duration::ZERO;
    let mut gen = 1;
    // Several rounds: the discard lands at different points of the last 200 ms.
    for (round, end_offset_ms) in [150u64, 100, 50, 150, 100].into_iter().enumerate() {
        // 600 ms of reply, then its end: the thread plays out the buffer (200 ms) at the end.
        let played0 = AudioStats::get(&stats.played_bytes);
        for _ in 0..6 {
            assert!(h.play(gen, 24_000, tone_ms(100)));
        }
        h.end_of_turn(gen);
        // Wait until everything has been written (the tail is then in the device buffer), then
        // a little into the play-out.
        let t = Instant::now();
        while AudioStats::get(&stats.played_bytes) < played0 + 6 * 4_800
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            AudioStats::get(&stats.played_bytes),
            played0 + 6 * 4_800,
            "round {round}: the whole reply was written"
        );
        std::thread::sleep(Duration::from_millis(200 - end_offset_ms));
        let discards = AudioStats::get(&stats.discards);
        let played = AudioStats::get(&stats.played_bytes);
        gen += 1;
        h.discard(gen);
        let took = changed(&stats.discards, discards)
            .unwrap_or_else(|| panic!("round {round}: no drop within 2 s of the discard"));
        println!(
            "round {round}: discard {end_offset_ms} ms before the reply's end: drop issued after {:.3} ms",
            took.as_secs_f64() * 1e3
        );
        worst = worst.max(took);
        assert_eq!(
            AudioStats::get(&stats.played_bytes),
            played,
            "nothing of the reply is written after the discard"
        );
        // Stale chunks of the discarded reply are refused.
        let discarded = AudioStats::get(&stats.discarded_bytes);
        assert!(h.play(gen - 1, 24_000, tone_ms(100)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(AudioStats::get(&stats.played_bytes), played);
        assert_eq!(AudioStats::get(&stats.discarded_bytes), discarded + 4_800);
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "worst discard -> drop issued while a reply ends: {:.3} ms",
        worst.as_secs_f64() * 1e3
    );
    // Mid-reply: 2 s queued, so the thread is waiting for room in a full buffer.
    let mut worst_mid = Duration::ZERO;
    for (round, after_ms) in [300u64, 510, 725, 960].into_iter().enumerate() {
        for _ in 0..20 {
            assert!(h.play(gen, 24_000, tone_ms(100)));
        }
        std::thread::sleep(Duration::from_millis(after_ms));
        let discards = AudioStats::get(&stats.discards);
        gen += 1;
        h.discard(gen);
        let took = changed(&stats.discards, discards)
            .unwrap_or_else(|| panic!("mid round {round}: no drop within 2 s of the discard"));
        let played = AudioStats::get(&stats.played_bytes);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            AudioStats::get(&stats.played_bytes),
            played,
            "nothing of the reply is written after the drop"
        );
        println!(
            "mid round {round}: discard {after_ms} ms into a 2 s reply: drop issued after {:.3} ms",
            took.as_secs_f64() * 1e3
        );
        worst_mid = worst_mid.max(took);
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "worst discard -> drop issued mid-reply: {:.3} ms",
        worst_mid.as_secs_f64() * 1e3
    );
    let worst = worst.max(worst_mid);
    assert!(
        worst <= Duration::from_millis(5),
        "the drop waited {worst:?} (a blocking drain waits up to the 200 ms buffer)"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(h);
    join.join().unwrap();
}
